// AdamW, the learning-rate schedule and the FTZ/DAZ switch (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <xmmintrin.h>
#endif

namespace moe::train {
namespace {

struct AdamConst {
  float clip_scale, b1, nb1, b2, nb2, inv_bc1, inv_bc2, lr, eps, wd;
};

// The update of elements [0, n): the scalar reference; the AVX-512 version below
// does the same operations in the same order (16 elements at a time, the tail of
// each piece scalar). The pieces are fixed by the layout: deterministic.
void adam_scalar(float* w, const float* g, float* m, float* v, size_t n, const AdamConst& c) {
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * c.clip_scale;
    m[i] = c.b1 * m[i] + c.nb1 * gi;
    v[i] = c.b2 * v[i] + c.nb2 * gi * gi;
    const float mh = m[i] * c.inv_bc1, vh = v[i] * c.inv_bc2;
    w[i] -= c.lr * (mh / (std::sqrt(vh) + c.eps) + c.wd * w[i]);
  }
}

double sumsq_scalar(const float* g, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
  return s;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void adam_avx512(float* w, const float* g, float* m, float* v,
                                                   size_t n, const AdamConst& c) {
  const __m512 cs = _mm512_set1_ps(c.clip_scale), b1 = _mm512_set1_ps(c.b1), nb1 = _mm512_set1_ps(c.nb1);
  const __m512 b2 = _mm512_set1_ps(c.b2), nb2 = _mm512_set1_ps(c.nb2), ib1 = _mm512_set1_ps(c.inv_bc1);
  const __m512 ib2 = _mm512_set1_ps(c.inv_bc2), lr = _mm512_set1_ps(c.lr), eps = _mm512_set1_ps(c.eps);
  const __m512 wd = _mm512_set1_ps(c.wd);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), cs);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(nb1, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)),
                                    _mm512_mul_ps(_mm512_mul_ps(nb2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 mh = _mm512_mul_ps(mi, ib1), vh = _mm512_mul_ps(vi, ib2);
    const __m512 wi = _mm512_loadu_ps(w + i);
    const __m512 u = _mm512_add_ps(_mm512_div_ps(mh, _mm512_add_ps(_mm512_maskz_sqrt_ps(0xFFFF, vh), eps)), _mm512_mul_ps(wd, wi));
    _mm512_storeu_ps(w + i, _mm512_sub_ps(wi, _mm512_mul_ps(lr, u)));
  }
  adam_scalar(w + i, g + i, m + i, v + i, n - i, c);
}

__attribute__((target("avx512f"))) double sumsq_avx512(const float* g, size_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d x0 = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(g + i));
    const __m512d x1 = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(g + i + 8));
    a0 = _mm512_fmadd_pd(x0, x0, a0);
    a1 = _mm512_fmadd_pd(x1, x1, a1);
  }
  alignas(64) double t[8];
  _mm512_store_pd(t, _mm512_add_pd(a0, a1));
  double s = 0;
  for (double x : t) s += x;
  return s + sumsq_scalar(g + i, n - i);
}

const bool kAvx512 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") != 0;
}();
#else
const bool kAvx512 = false;
#endif

void adam_update(float* w, const float* g, float* m, float* v, size_t n, const AdamConst& c) {
#if defined(__x86_64__)
  if (kAvx512) return adam_avx512(w, g, m, v, n, c);
#endif
  adam_scalar(w, g, m, v, n, c);
}

double sumsq(const float* g, size_t n) {
#if defined(__x86_64__)
  if (kAvx512) return sumsq_avx512(g, n);
#endif
  return sumsq_scalar(g, n);
}

}  // namespace

float lr_at(const OptimOptions& o, int64_t step) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * float(step + 1) / float(o.warmup);
  const int64_t span = std::max<int64_t>(1, o.total_steps - o.warmup);
  const double p = std::min(1.0, double(step - o.warmup) / double(span));
  const double c = 0.5 * (1.0 + std::cos(M_PI * p));
  return static_cast<float>(o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * c));
}

void set_ftz_daz() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ (bit 15) | DAZ (bit 6)
#endif
}

double AdamW::step(const ParamLayout& l, std::vector<float>& w, std::vector<float>& g, float lr,
                   const OptimOptions& o, ThreadPool* pool) {
  constexpr size_t chunk = 1 << 16;
  const size_t n = w.size(), n_chunks = (n + chunk - 1) / chunk;
  std::vector<double> sums(n_chunks, 0.0);
  auto run = [&](const auto& fn) {
    if (pool) {
      pool->parallel_for(static_cast<int64_t>(n_chunks), [&](int64_t c, int) {
        set_ftz_daz();
        fn(static_cast<size_t>(c));
      });
    } else {
      for (size_t c = 0; c < n_chunks; ++c) fn(c);
    }
  };
  run([&](size_t c) {
    const size_t i0 = c * chunk, i1 = std::min(n, (c + 1) * chunk);
    sums[c] = sumsq(g.data() + i0, i1 - i0);
  });
  double ss = 0;
  for (double s : sums) ss += s;
  const double norm = std::sqrt(ss);
  const float clip_scale = (o.clip > 0 && norm > o.clip) ? static_cast<float>(o.clip / norm) : 1.0f;
  ++t;
  const float bc1 = 1.0f - std::pow(o.beta1, float(t)), bc2 = 1.0f - std::pow(o.beta2, float(t));
  // one list of (tensor, chunk) pieces over all tensors: one parallel region per step
  struct Piece {
    size_t a, b;
    float wd;
  };
  std::vector<Piece> pieces;
  for (const ParamTensor& pt : l.tensors) {
    const float wd = pt.decay ? o.weight_decay : 0.0f;
    for (size_t a = pt.offset; a < pt.offset + pt.size; a += chunk)
      pieces.push_back({a, std::min(pt.offset + pt.size, a + chunk), wd});
  }
  auto upd = [&](const Piece& pc) {
    const AdamConst k{clip_scale, o.beta1, 1.0f - o.beta1, o.beta2, 1.0f - o.beta2, 1.0f / bc1, 1.0f / bc2,
                      lr, o.eps, pc.wd};
    adam_update(w.data() + pc.a, g.data() + pc.a, m.data() + pc.a, v.data() + pc.a, pc.b - pc.a, k);
  };
  if (pool && pieces.size() > 1) {
    pool->parallel_for(static_cast<int64_t>(pieces.size()), [&](int64_t c, int) {
      set_ftz_daz();
      upd(pieces[c]);
    });
  } else {
    for (const Piece& pc : pieces) upd(pc);
  }
  return norm;
}

}  // namespace moe::train
