// AVX-512 (F/BW/VL/DQ) + VNNI integer-dot kernels for the quantized weight types:
// vpdpbusd / vpdpwssd on 256-bit vectors (32 registers allow 4x4 tiles) and k-mask
// expansion of the Q5 high bits. Called through gemm_avx512() by ops/quant.cpp
// only when __builtin_cpu_supports says the CPU has all of these.
#include <immintrin.h>

#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/reference/iq_grids.h"

#define MOE_SIMD_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))
#define MOE_SIMD_NS avx512_impl
#define MOE_SIMD_AVX512 1
#define MOE_TILE_R 4
#define MOE_TILE_T 4
#include "ops/cpu/quant_simd_body.h"

namespace moe::ops::cpu {
GemmFn gemm_avx512(GgmlType t) { return avx512_impl::select(t); }
}  // namespace moe::ops::cpu
