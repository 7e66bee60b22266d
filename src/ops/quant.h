// Weight types: dequantize, quantize, and dot products of a weight row with an
// activation row, for every supported GgmlType.
//
// Activations are rounded once per layer to the weight type's dot-product
// partner (vec_dot_type) and reused for every row and every expert, exactly as
// llama.cpp does, so that quantized models give llama.cpp's logits:
//   F32 -> F32, F16 -> F16 (activations rounded to fp16), BF16 -> BF16,
//   Q4_0, Q5_0, Q8_0, MXFP4, IQ4_NL -> Q8_0;  Q4_1, Q5_1 -> Q8_1;
//   Q2_K .. Q6_K, TQ1_0, TQ2_0 and the 256-block i-quants (IQ1_S .. IQ4_XS) -> Q8_K.
// Rounding rules (round half to even), from the fixtures' README:
//   q8_0: blocks of 32, amax = max|x|, d = fp16(amax/127), q = rne(x * 127/amax)
//   q8_1: as q8_0 plus s = d * sum(q) (stored as fp16)
//   q8_K: blocks of 256, m = value of largest magnitude (signed), iscale = -127/m,
//         q = min(127, rne(x * iscale)), d = 1/iscale (f32), bsums[16] = sums of 16 q's
// Scalar references live in ops/reference/quant_ref.h; the functions here pick the
// best compiled kernel for this CPU (AVX-512 VNNI, AVX2, portable) at run time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "gguf/types.h"

namespace moe::ops {

GgmlType vec_dot_type(GgmlType weight_type);

// Bytes needed for a quantized activation row of n elements (n % 256 == 0 not required
// for 32-blocks; K types need n % 256 == 0).
size_t activation_row_bytes(GgmlType weight_type, int64_t n);

// Round/quantize one activation row x[n] into the partner format of weight_type.
void quantize_activation_row(GgmlType weight_type, const float* x, void* dst, int64_t n);

// dot(weight row, quantized activation row) for n elements.
float vec_dot(GgmlType weight_type, const void* w_row, const void* x_q, int64_t n);

// y[r - r0] = dot(W[r], x_q) for r in [r0, r1); W rows are row_stride bytes apart.
void gemv(GgmlType weight_type, const void* W, size_t row_stride, const void* x_q, float* y,
          int64_t r0, int64_t r1, int64_t n);

// Y[t][r - r0] = dot(W[r], X_q[t]) for t in [0, m), r in [r0, r1).
// X_q rows are x_stride bytes apart; Y rows ldy floats apart.
void gemm(GgmlType weight_type, const void* W, size_t row_stride, const void* X_q,
          size_t x_stride, int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1, int64_t n);

// Dequantize a row of n elements to f32 (embedding lookup, tests).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Quantize a row of n f32 values into type (the synthesizer writes models with it).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// Name of the kernel family that vec_dot uses for this type on this CPU ("avx512_vnni", ...).
const char* kernel_name(GgmlType weight_type);

// Kernel families. The default is the best one this CPU runs; the environment
// variable MOE_KERNEL=scalar|avx2|avx512 (read once) or set_kernel_override()
// forces one (capped at what the CPU supports). Tests loop over available_kernel_paths().
enum class KernelPath { scalar = 0, avx2 = 1, avx512 = 2 };
KernelPath best_kernel_path();  // what this CPU supports
KernelPath active_kernel_path();
void set_kernel_override(std::optional<KernelPath> path);  // nullopt: back to MOE_KERNEL / best
const char* kernel_path_name(KernelPath path);              // "scalar", "avx2", "avx512"
std::vector<KernelPath> available_kernel_paths();           // scalar .. best_kernel_path()

// Forces a kernel path for its lifetime (tests), then returns to the default.
struct KernelPathGuard {
  explicit KernelPathGuard(KernelPath p) { set_kernel_override(p); }
  ~KernelPathGuard() { set_kernel_override(std::nullopt); }
  KernelPathGuard(const KernelPathGuard&) = delete;
  KernelPathGuard& operator=(const KernelPathGuard&) = delete;
};

}  // namespace moe::ops
