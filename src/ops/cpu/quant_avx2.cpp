// AVX2 + FMA + F16C integer-dot kernels for the quantized weight types (maddubs +
// madd). Called through gemm_avx2() by ops/quant.cpp when the CPU has AVX2 and the
// active kernel path is avx2 or higher (AVX-512 falls back here for a missing type).
// The kernels themselves are in quant_simd_body.h; only the target differs.
#include <immintrin.h>

#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/reference/iq_grids.h"

#define MOE_SIMD_TARGET __attribute__((target("avx2,fma,f16c")))
#define MOE_SIMD_NS avx2_impl
#define MOE_SIMD_AVX512 0
#define MOE_TILE_R 2  // 16 ymm registers: 2x4 accumulators + 2 unpacked rows
#define MOE_TILE_T 4
#include "ops/cpu/quant_simd_body.h"

namespace moe::ops::cpu {
GemmFn gemm_avx2(GgmlType t) { return avx2_impl::select(t); }
}  // namespace moe::ops::cpu
