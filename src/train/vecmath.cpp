// Float32 elementwise kernels of training with AVX-512 versions (exp by a Cephes
// degree-6 polynomial on [-ln2/2, ln2/2] and 2^n scaling, ~1 ulp): softmax rows,
// SwiGLU forward and backward. Without AVX-512 the scalar templates of ops.h run.
// Which version runs is fixed per machine, and each element's arithmetic does not
// depend on its position or the thread count: deterministic.
#include <cmath>

#include "train/ops.h"

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the masked-off source,
// which -Wmaybe-uninitialized flags in target("avx512f") functions (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace moe::train {
namespace {

#if defined(__x86_64__)
const bool kAvx512 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") != 0;
}();

#define MOE_AVX512 __attribute__((target("avx512f")))

MOE_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.72283f));
  const __m512 n = _mm512_maskz_roundscale_ps(0xFFFF, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(0xFFFF, p, n);
}

MOE_AVX512 inline __m512 sigmoid512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

MOE_AVX512 float softmax512(float* x, int64_t n) {
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16)
    mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i));
  const float mx = _mm512_reduce_max_ps(mv);
  const __m512 m = _mm512_set1_ps(mx);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m)));
    _mm512_mask_storeu_ps(x + i, k, e);
    s0 = _mm512_add_pd(s0, _mm512_maskz_cvtps_pd(0xFF, _mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  const double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
  }
  return mx + static_cast<float>(std::log(sum));
}

MOE_AVX512 void swiglu_fwd512(const float* g, const float* u, float* a, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 gv = _mm512_maskz_loadu_ps(k, g + i), uv = _mm512_maskz_loadu_ps(k, u + i);
    _mm512_mask_storeu_ps(a + i, k, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid512(gv)), uv));
  }
}

MOE_AVX512 void swiglu_bwd512(const float* g, const float* u, const float* da, float* dg, float* du,
                              int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 gv = _mm512_maskz_loadu_ps(k, g + i), uv = _mm512_maskz_loadu_ps(k, u + i);
    const __m512 dav = _mm512_maskz_loadu_ps(k, da + i), s = sigmoid512(gv);
    _mm512_mask_storeu_ps(du + i, k, _mm512_mul_ps(_mm512_mul_ps(dav, gv), s));
    const __m512 t = _mm512_add_ps(one, _mm512_mul_ps(gv, _mm512_sub_ps(one, s)));
    _mm512_mask_storeu_ps(dg + i, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dav, uv), s), t));
  }
}
#else
const bool kAvx512 = false;
#endif

}  // namespace

float softmax_fwd_f32(float* x, int64_t n) {
#if defined(__x86_64__)
  if (kAvx512) return softmax512(x, n);
#endif
  return softmax_fwd_scalar(x, n);
}

void swiglu_fwd_f32(const float* g, const float* u, float* a, int64_t n) {
#if defined(__x86_64__)
  if (kAvx512) return swiglu_fwd512(g, u, a, n);
#endif
  swiglu_fwd_scalar(g, u, a, n);
}

void swiglu_bwd_f32(const float* g, const float* u, const float* da, float* dg, float* du, int64_t n) {
#if defined(__x86_64__)
  if (kAvx512) return swiglu_bwd512(g, u, da, dg, du, n);
#endif
  swiglu_bwd_scalar(g, u, da, dg, du, n);
}

}  // namespace moe::train
