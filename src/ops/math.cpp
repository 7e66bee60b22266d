// Portable f32 row ops; simple loops the compiler vectorises. Accumulations that
// decide accuracy (norm sums) use double, matching the published formulas.
#include "ops/math.h"

#include <algorithm>
#include <cmath>

namespace moe::ops {

// The float operations are llama.cpp's, in its order: squares in f32 summed in double,
// mean narrowed to f32, scale = 1 / sqrtf(mean + eps) in f32, then (x * scale) * w.
// Bit-equal activations matter: the next op rounds them to q8, and inputs built from
// quantized embedding rows put many of them exactly on a rounding boundary, where an
// ulp decides the q8 value (and, through the router, sometimes the experts chosen).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(ss / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void rope_cache(float* cos_sin, int64_t pos, int64_t n_rot, float base) {
  // theta_i = pos * base^(-2i/n_rot), computed in float as a running product
  // (theta_{i+1} = theta_i * base^(-2/n_rot)) the way llama.cpp does: the angles then
  // agree with its to the last bit, so activations round to the same q8 values.
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    cos_sin[2 * i] = std::cos(theta);
    cos_sin[2 * i + 1] = std::sin(theta);
    theta *= theta_scale;
  }
}

void rope_cache_yarn(float* cos_sin, int64_t pos, int64_t n_rot, float base, const YarnParams& y) {
  const float d = static_cast<float>(n_rot);
  auto corr = [&](float b) {
    return d * std::log(static_cast<float>(y.n_ctx_orig) / (b * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(base));
  };
  const float lo = std::max(0.0f, std::floor(corr(y.beta_fast)));
  const float hi = std::min(d - 1.0f, std::ceil(corr(y.beta_slow)));
  const float theta_scale = std::pow(base, -2.0f / d);
  float t_extrap = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float t_interp = y.freq_scale * t_extrap;
    const float r = (static_cast<float>(i) - lo) / std::max(0.001f, hi - lo);
    const float ramp = 1.0f - std::min(1.0f, std::max(0.0f, r));
    const float theta = t_interp * (1.0f - ramp) + t_extrap * ramp;
    cos_sin[2 * i] = std::cos(theta) * y.mscale;
    cos_sin[2 * i + 1] = std::sin(theta) * y.mscale;
    t_extrap *= theta_scale;
  }
}

void rope_apply(float* x, const float* cos_sin, int64_t n_rot, bool neox) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const int64_t a = neox ? i : 2 * i;
    const int64_t b = neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
}

// axpy and dot_f32: ops/cpu/math_hwy.cpp (Highway).

}  // namespace moe::ops
