// F32 / F16 / BF16 weight kernels written once with Highway and compiled for each
// x86 target (foreach_target.h). ops/quant.cpp selects the AVX2 or AVX3 (AVX-512)
// instance explicitly through gemm_float_hwy(type, level), so that MOE_KERNEL can
// force either; the portable path is the plain loop in quant_portable.cpp.
// Math: activations are already in the weight's format (f16/bf16 rounded); both
// sides are widened to f32 and products accumulate in f32 lanes (FMA), then a
// horizontal sum. Tiles of 4 rows x 4 tokens reuse each widened weight vector.
#include <cstddef>
#include <cstdint>

#include "base/fp16.h"
#include "ops/cpu/quant_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/cpu/quant_float_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace moe::ops::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Element formats: load Lanes(df) elements as f32, and one element as f32 (tails).
struct FmtF32 {
  using E = float;
  template <class D>
  static HWY_INLINE hn::Vec<D> load(D df, const E* p) {
    return hn::LoadU(df, p);
  }
  static HWY_INLINE float one(const E* p) { return *p; }
};
struct FmtF16 {
  using E = uint16_t;
  template <class D>
  static HWY_INLINE hn::Vec<D> load(D df, const E* p) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
  static HWY_INLINE float one(const E* p) { return fp16_to_f32(*p); }
};
struct FmtBF16 {
  using E = uint16_t;
  template <class D>
  static HWY_INLINE hn::Vec<D> load(D df, const E* p) {
    const hn::Rebind<hwy::bfloat16_t, D> db;
    return hn::PromoteTo(df, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(p)));
  }
  static HWY_INLINE float one(const E* p) { return bf16_to_f32(*p); }
};

// Y[t*ldy + r] = sum_i w_r[i] * x_t[i] for a tile of R rows x T tokens.
template <class F, int R, int T>
HWY_INLINE void tile(const uint8_t* wbase, size_t row_stride, const uint8_t* xbase,
                     size_t x_stride, float* Y, int64_t ldy, int64_t n) {
  using E = typename F::E;
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const E* w[R];
  const E* x[T];
  for (int i = 0; i < R; ++i) w[i] = reinterpret_cast<const E*>(wbase + i * row_stride);
  for (int j = 0; j < T; ++j) x[j] = reinterpret_cast<const E*>(xbase + j * x_stride);
  hn::Vec<decltype(df)> acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = hn::Zero(df);
  int64_t k = 0;
  for (; k + N <= n; k += N) {
    hn::Vec<decltype(df)> wv[R];
    for (int i = 0; i < R; ++i) wv[i] = F::load(df, w[i] + k);
    for (int j = 0; j < T; ++j) {
      const auto xv = F::load(df, x[j] + k);
      for (int i = 0; i < R; ++i) acc[i][j] = hn::MulAdd(wv[i], xv, acc[i][j]);
    }
  }
  for (int j = 0; j < T; ++j)
    for (int i = 0; i < R; ++i) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[i][j]));
      for (int64_t kk = k; kk < n; ++kk) s += F::one(w[i] + kk) * F::one(x[j] + kk);
      Y[j * ldy + i] = s;
    }
}

template <class F>
void gemm_float(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m,
                float* Y, int64_t ldy, int64_t nr, int64_t n) {
  const auto* wb = static_cast<const uint8_t*>(W);
  const auto* xb = static_cast<const uint8_t*>(X);
  int64_t r = 0;
  for (; r + 4 <= nr; r += 4) {
    int64_t t = 0;
    for (; t + 4 <= m; t += 4)
      tile<F, 4, 4>(wb + r * row_stride, row_stride, xb + t * x_stride, x_stride, Y + t * ldy + r, ldy, n);
    for (; t < m; ++t)
      tile<F, 4, 1>(wb + r * row_stride, row_stride, xb + t * x_stride, x_stride, Y + t * ldy + r, ldy, n);
  }
  for (; r < nr; ++r) {
    int64_t t = 0;
    for (; t + 4 <= m; t += 4)
      tile<F, 1, 4>(wb + r * row_stride, row_stride, xb + t * x_stride, x_stride, Y + t * ldy + r, ldy, n);
    for (; t < m; ++t)
      tile<F, 1, 1>(wb + r * row_stride, row_stride, xb + t * x_stride, x_stride, Y + t * ldy + r, ldy, n);
  }
}

GemmFn select_float(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return gemm_float<FmtF32>;
    case GgmlType::F16: return gemm_float<FmtF16>;
    case GgmlType::BF16: return gemm_float<FmtBF16>;
    default: return nullptr;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace moe::ops::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe::ops::cpu {

GemmFn gemm_float_hwy(GgmlType t, int level) {
#if HWY_TARGETS & HWY_AVX3
  if (level >= 2) return N_AVX3::select_float(t);
#endif
#if HWY_TARGETS & HWY_AVX2
  if (level >= 1) return N_AVX2::select_float(t);
#endif
  return gemm_portable(t);
}

}  // namespace moe::ops::cpu
#endif  // HWY_ONCE
