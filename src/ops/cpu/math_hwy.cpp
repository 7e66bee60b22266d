// Highway versions of the f32 vector primitives of ops/math.h that sit in hot
// loops: dot products with cached keys and weighted sums of cached values (the
// attention inner loops) and the SwiGLU activations of the FFNs. Compiled for every
// x86 target and chosen once at run time (HWY_DYNAMIC_DISPATCH). Sums are
// reassociated across lanes, so results differ from a sequential loop by float
// rounding only; exp is Highway's polynomial (within a few ulp of libm).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/fp16.h"
#include "ops/math.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/cpu/math_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace moe::ops::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float DotF32(const float* a, const float* b, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void AxpyF32(float alpha, const float* x, float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, alpha);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  auto s0 = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::PromoteTo(d, hn::LoadU(dh, bh + i)), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) s += a[i] * fp16_to_f32(b[i]);
  return s;
}

void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto* xh = reinterpret_cast<const hwy::float16_t*>(x);
  const auto va = hn::Set(d, alpha);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(va, hn::PromoteTo(d, hn::LoadU(dh, xh + i)), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += alpha * fp16_to_f32(x[i]);
}

// y = silu(g) * u = g * u / (1 + exp(-g)); the exponent is clamped at 88 (exp(88) ~
// 1.7e38 stays finite), where g / (1 + exp(-g)) is below 1e-36 in magnitude anyway.
void SwigluF32(const float* g, const float* u, float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f), cap = hn::Set(d, 88.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto gv = hn::LoadU(d, g + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(gv), cap));
    hn::StoreU(hn::Mul(hn::Div(gv, hn::Add(one, e)), hn::LoadU(d, u + i)), d, y + i);
  }
  for (; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(std::min(-g[i], 88.0f))) * u[i];
}

// gpt-oss: g clamped above at `limit`, u to [-limit, limit];
// y = g / (1 + exp(-alpha g)) * (u + 1).
void SwigluClampedF32(const float* g, const float* u, float* y, int64_t n, float alpha, float limit) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f), cap = hn::Set(d, 88.0f), na = hn::Set(d, -alpha);
  const auto hi = hn::Set(d, limit), lo = hn::Set(d, -limit);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto gc = hn::Min(hn::LoadU(d, g + i), hi);
    const auto uc = hn::Min(hn::Max(hn::LoadU(d, u + i), lo), hi);
    const auto e = hn::Exp(d, hn::Min(hn::Mul(na, gc), cap));
    hn::StoreU(hn::Mul(hn::Div(gc, hn::Add(one, e)), hn::Add(uc, one)), d, y + i);
  }
  for (; i < n; ++i) {
    const float gc = std::min(g[i], limit);
    const float uc = std::min(std::max(u[i], -limit), limit);
    y[i] = gc / (1.0f + std::exp(std::min(-alpha * gc, 88.0f))) * (uc + 1.0f);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace moe::ops::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe::ops {
namespace cpu {
HWY_EXPORT(DotF32);
HWY_EXPORT(AxpyF32);
HWY_EXPORT(DotF32F16);
HWY_EXPORT(AxpyF16);
HWY_EXPORT(SwigluF32);
HWY_EXPORT(SwigluClampedF32);
}  // namespace cpu

void swiglu(const float* g, const float* u, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(cpu::SwigluF32)(g, u, y, n);
}
void swiglu_clamped(const float* g, const float* u, float* y, int64_t n, float alpha, float limit) {
  HWY_DYNAMIC_DISPATCH(cpu::SwigluClampedF32)(g, u, y, n, alpha, limit);
}

float dot_f32_f16(const float* a, const uint16_t* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(cpu::DotF32F16)(a, b, n);
}
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(cpu::AxpyF16)(a, x, y, n);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(cpu::DotF32)(a, b, n);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(cpu::AxpyF32)(a, x, y, n);
}
}  // namespace moe::ops
#endif
