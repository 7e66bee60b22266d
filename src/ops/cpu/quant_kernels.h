// Internal kernel table of the weight types: one gemm entry point per type and
// instruction set. ops/quant.cpp picks a table once per call; vec_dot and gemv
// are gemm with m = 1. A null entry means "no kernel for this type at this level".
// Contract of GemmFn: Y[t*ldy + r] = dot(W row r, X row t) for r < nr, t < m;
// W rows are row_stride bytes apart, X rows (activations already quantized into
// vec_dot_type) x_stride bytes apart; n is a multiple of the block size.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops::cpu {

using GemmFn = void (*)(const void* W, size_t row_stride, const void* X, size_t x_stride,
                        int64_t m, float* Y, int64_t ldy, int64_t nr, int64_t n);

GemmFn gemm_portable(GgmlType t);  // every supported type
GemmFn gemm_avx2(GgmlType t);      // integer types (AVX2 + FMA + F16C)
GemmFn gemm_avx512(GgmlType t);    // integer types (AVX-512 F/BW/VL/DQ + VNNI)
// 512-bit fused unpack+dot kernels (same CPU requirements as gemm_avx512) for
// Q8_0, Q4_0, MXFP4, Q4_K; null for the other types.
GemmFn gemm_avx512_zmm(GgmlType t);

// Activation rounding into q8_0 / q8_1 / q8_K with AVX-512, bit-exact with
// ops/reference (quantize_row_q8_*_ref). Returns false for a format it lacks.
bool quantize_activation_avx512(GgmlType act_type, const float* x, void* dst, int64_t n);
// F32 / F16 / BF16 through Highway: level 1 = AVX2 target, 2 = AVX3 (AVX-512).
GemmFn gemm_float_hwy(GgmlType t, int level);

}  // namespace moe::ops::cpu
