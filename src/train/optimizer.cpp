// AdamW, the learning-rate schedule and the FTZ/DAZ switch (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace moe::train {

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
    double s = 0;
    for (size_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) s += double(g[i]) * double(g[i]);
    sums[c] = s;
  });
  double ss = 0;
  for (double s : sums) ss += s;
  const double norm = std::sqrt(ss);
  const float clip_scale = (o.clip > 0 && norm > o.clip) ? static_cast<float>(o.clip / norm) : 1.0f;
  ++t;
  const float bc1 = 1.0f - std::pow(o.beta1, float(t)), bc2 = 1.0f - std::pow(o.beta2, float(t));
  for (const ParamTensor& pt : l.tensors) {
    const float wd = pt.decay ? o.weight_decay : 0.0f;
    const size_t a = pt.offset, b = pt.offset + pt.size;
    auto upd = [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) {
        const float gi = g[i] * clip_scale;
        m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * gi;
        v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * gi * gi;
        const float mh = m[i] / bc1, vh = v[i] / bc2;
        w[i] -= lr * (mh / (std::sqrt(vh) + o.eps) + wd * w[i]);
      }
    };
    const size_t nc = (pt.size + chunk - 1) / chunk;
    if (pool && nc > 1) {
      pool->parallel_for(static_cast<int64_t>(nc), [&](int64_t c, int) {
        set_ftz_daz();
        upd(a + c * chunk, std::min(b, a + (c + 1) * chunk));
      });
    } else {
      upd(a, b);
    }
  }
  return norm;
}

}  // namespace moe::train
