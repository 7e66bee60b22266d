// Activation rounding (q8_0, q8_1, q8_K) with AVX-512, bit-exact with the scalar
// references of ops/reference/quant_ref.cpp: the same f32 operations in the same
// order per element (x * id rounded to f32, then round-half-to-even through
// vcvtps2dq under the default MXCSR mode, as std::nearbyint), the block scale
// computed by the same scalar expression, and max|x| (order-independent).
// q8_K's signed max is the first element of largest magnitude, as the reference's
// strict '>' scan picks. Called by ops/quant.cpp on the avx512 path only.
#include <immintrin.h>

// GCC 12 flags the _mm512_undefined_* inside its own cast/reduce intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_kernels.h"

#define MOE_TF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

namespace moe::ops::cpu {
namespace {

MOE_TF inline __m512 absps(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

// Rounded activations held to int8's range. Finite inputs already land in
// [-127, 127]; a NaN or Inf converts to INT_MIN, which would overflow the block
// sums (UB, seen by UBSan in the NaN-poisoning tests) and wrap in the int8 store.
MOE_TF inline __m512i clamp_i8(__m512i q) {
  return _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128));
}

template <bool kSum>
MOE_TF void q8_0_blocks(const float* x, uint8_t* dst, int64_t nb, size_t bsize) {
  for (int64_t i = 0; i < nb; ++i, x += 32, dst += bsize) {
    const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(absps(a), absps(b)));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qa = clamp_i8(_mm512_cvtps_epi32(_mm512_mul_ps(a, vid)));
    const __m512i qb = clamp_i8(_mm512_cvtps_epi32(_mm512_mul_ps(b, vid)));
    const uint16_t dh = f32_to_fp16(d);
    std::memcpy(dst, &dh, 2);
    int8_t* qs = reinterpret_cast<int8_t*>(dst + (kSum ? 4 : 2));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtepi32_epi8(qb));
    if constexpr (kSum) {
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
      const uint16_t sh = f32_to_fp16(d * static_cast<float>(sum));
      std::memcpy(dst + 2, &sh, 2);
    }
  }
}

MOE_TF void q8_k_blocks(const float* x, BlockQ8K* out, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    __m512 mx = _mm512_setzero_ps();
    for (int c = 0; c < 16; ++c) mx = _mm512_max_ps(mx, absps(_mm512_loadu_ps(x + 16 * c)));
    const float amax = _mm512_reduce_max_ps(mx);
    BlockQ8K blk;
    if (amax == 0.f) {
      std::memset(&blk, 0, sizeof(blk));
    } else {
      float m = 0.f;
      const __m512 va = _mm512_set1_ps(amax);
      for (int c = 0; c < 16; ++c) {
        const __mmask16 k = _mm512_cmp_ps_mask(absps(_mm512_loadu_ps(x + 16 * c)), va, _CMP_EQ_OQ);
        if (k) {
          m = x[16 * c + __builtin_ctz(k)];
          break;
        }
      }
      const float iscale = -127.f / m;
      const __m512 vs = _mm512_set1_ps(iscale);
      for (int c = 0; c < 16; ++c) {
        const __m512i q = clamp_i8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * c), vs)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.qs + 16 * c), _mm512_cvtepi32_epi8(q));
        blk.bsums[c] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
      }
      blk.d = 1.f / iscale;
    }
    std::memcpy(&out[i], &blk, sizeof(blk));
  }
}

}  // namespace

bool quantize_activation_avx512(GgmlType act_type, const float* x, void* dst, int64_t n) {
  switch (act_type) {
    case GgmlType::Q8_0:
      if (n % 32) return false;
      q8_0_blocks<false>(x, static_cast<uint8_t*>(dst), n / 32, sizeof(BlockQ8_0));
      return true;
    case GgmlType::Q8_1:
      if (n % 32) return false;
      q8_0_blocks<true>(x, static_cast<uint8_t*>(dst), n / 32, sizeof(BlockQ8_1));
      return true;
    case GgmlType::Q8_K:
      if (n % 256) return false;
      q8_k_blocks(x, static_cast<BlockQ8K*>(dst), n / 256);
      return true;
    default: return false;
  }
}

}  // namespace moe::ops::cpu
