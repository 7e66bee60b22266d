// Element-wise and row-wise f32 ops of the forward pass: RMSNorm, softmax, RoPE,
// SwiGLU. Shapes in comments are [rows, cols], outermost first. Called by the
// model layer once per row; the caller parallelises over rows.
#pragma once
#include <cstdint>

namespace moe::ops {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]   (w may be null: no scale). y may alias x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// In place: x = softmax(x) over n values (max-subtracted).
void softmax(float* x, int64_t n);

// y[i] = silu(g[i]) * u[i],  silu(g) = g / (1 + exp(-g))
void swiglu(const float* g, const float* u, float* y, int64_t n);

// In-place rotary embedding of one head vector x[head_dim] at position pos.
// Pairs: NORM mode (2i, 2i+1), NEOX mode (i, i + n_rot/2); angle pos * base^(-2i/n_rot).
// Only the first n_rot dims rotate. cos_sin holds n_rot/2 (cos, sin) pairs for pos
// (see rope_cache) so that all heads of a token share the trigonometry.
void rope_apply(float* x, const float* cos_sin, int64_t n_rot, bool neox);
// cos_sin[2*i], cos_sin[2*i+1] = cos, sin of pos * base^(-2i/n_rot), i < n_rot/2.
void rope_cache(float* cos_sin, int64_t pos, int64_t n_rot, float base);

// YaRN (Peng et al. 2023) as llama.cpp applies it: per pair i, the angle blends the
// interpolated t/s and the original t with ramp(i) over the correction range
// [floor(corr(beta_fast)), ceil(corr(beta_slow))], corr(b) = d ln(n0/(2 pi b)) / (2 ln base);
// cos and sin are multiplied by mscale.
struct YarnParams {
  float freq_scale = 1.0f;  // 1 / factor
  int64_t n_ctx_orig = 4096;
  float beta_fast = 32.0f, beta_slow = 1.0f;
  float mscale = 1.0f;
};
void rope_cache_yarn(float* cos_sin, int64_t pos, int64_t n_rot, float base, const YarnParams& y);

// Clamped SwiGLU of gpt-oss: g' = min(g, limit), u' = clamp(u, -limit, limit),
// y = g' * sigmoid(alpha g') * (u' + 1).
void swiglu_clamped(const float* g, const float* u, float* y, int64_t n, float alpha, float limit);

// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);
// The same with x / b in IEEE half (an f16 KV cache), widened to f32.
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);
float dot_f32_f16(const float* a, const uint16_t* b, int64_t n);

}  // namespace moe::ops
