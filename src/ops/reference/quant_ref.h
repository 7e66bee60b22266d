// Scalar, obviously-correct references for the weight types of ops/quant.h:
// dequantize, quantize (weights), activation rounding (q8_0, q8_1, q8_K, f16,
// bf16) and a dot product that dequantizes both sides and sums in double.
// Callers: tests/ops/quant_test.cpp (oracle for every SIMD kernel) and the
// dispatch in ops/quant.cpp for types without a faster kernel. Never deleted.
#pragma once
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops::ref {

// dst[n] = the values that src (n elements of type) encodes. Also accepts the
// activation formats Q8_1 and Q8_K.
void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n);

// Quantize weights: ggml-style scale from the (signed) largest magnitude for the
// 32-blocks, a min/max search for the K-quants. Never writes NaN.
void quantize_row_ref(GgmlType type, const float* src, void* dst, int64_t n);

// Activation rounding, bit-exact with llama.cpp's x86 build (round half to even).
void quantize_row_q8_0_ref(const float* x, void* dst, int64_t n);
void quantize_row_q8_1_ref(const float* x, void* dst, int64_t n);
void quantize_row_q8_K_ref(const float* x, void* dst, int64_t n);
void quantize_activation_row_ref(GgmlType weight_type, const float* x, void* dst, int64_t n);

// sum_i w[i] * x[i] in double, both sides dequantized (x_q in vec_dot_type(weight_type)).
double vec_dot_ref(GgmlType weight_type, const void* w_row, const void* x_q, int64_t n);

}  // namespace moe::ops::ref
