// The 512-bit kernels (ops/cpu/quant_avx512_zmm.cpp) and the AVX-512 activation
// rounding (ops/cpu/quant_act_avx512.cpp) against the scalar reference, on every
// compiled kernel path, at the shapes they special-case: block counts that are
// not multiples of the 2-block pair or the 16-block scale group, row counts
// around the 4-row tile and the prefetch distance, 1..9 tokens, row ranges that
// start at an offset; and activation rounding edge cases (ties at .5, zero blocks,
// +-max of equal magnitude, tiny and large inputs), which must be bit-exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "ops/quant.h"
#include "ops/reference/quant_ref.h"

namespace moe::ops {
namespace {

std::vector<float> normal(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

const GgmlType kTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::MXFP4, GgmlType::Q4_K};

TEST(QuantZmm, GemmLargeShapesMatchReference) {
  for (GgmlType t : kTypes) {
    const int64_t bs = traits(t).block_size;
    // 16-block groups + a ragged tail (odd for 32-blocks), several K-quant blocks.
    const int64_t n = bs == 32 ? 32 * (16 * 4 + 7) : 256 * 9;
    const int64_t rows = 4 * 7 + 3, r0 = 5;
    const size_t ws = row_bytes(t, n), xs = activation_row_bytes(t, n);
    std::vector<uint8_t> W(ws * (r0 + rows));
    const auto w = normal(static_cast<size_t>(n * (r0 + rows)), 3, 1.f);
    for (int64_t r = 0; r < r0 + rows; ++r) ref::quantize_row_ref(t, &w[r * n], &W[r * ws], n);
    for (int64_t m : {1, 2, 4, 5, 9}) {
      std::vector<uint8_t> X(xs * m);
      const auto x = normal(static_cast<size_t>(n * m), 7 + static_cast<uint32_t>(m), 2.f);
      for (int64_t i = 0; i < m; ++i) ref::quantize_activation_row_ref(t, &x[i * n], &X[i * xs], n);
      std::vector<double> ref(static_cast<size_t>(m * rows)), absref(ref.size());
      std::vector<float> wd(n), xd(n);
      for (int64_t i = 0; i < m; ++i) {
        ref::dequantize_row_ref(vec_dot_type(t), &X[i * xs], xd.data(), n);
        for (int64_t r = 0; r < rows; ++r) {
          ref[i * rows + r] = ref::vec_dot_ref(t, &W[(r0 + r) * ws], &X[i * xs], n);
          ref::dequantize_row_ref(t, &W[(r0 + r) * ws], wd.data(), n);
          double a = 0;
          for (int64_t k = 0; k < n; ++k) a += std::fabs(static_cast<double>(wd[k]) * xd[k]);
          absref[i * rows + r] = a;
        }
      }
      for (KernelPath p : available_kernel_paths()) {
        KernelPathGuard g(p);
        const int64_t ldy = rows + 1;
        std::vector<float> Y(static_cast<size_t>(m * ldy), -7.f);
        gemm(t, W.data(), ws, X.data(), xs, m, Y.data(), ldy, r0, r0 + rows, n);
        double num = 0, den = 0;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < rows; ++r) {
            const double d = Y[i * ldy + r] - ref[i * rows + r];
            num += d * d;
            den += absref[i * rows + r] * absref[i * rows + r];
          }
          ASSERT_EQ(Y[i * ldy + rows], -7.f) << "wrote past r1";
        }
        EXPECT_LT(std::sqrt(num / den), 1e-6)
            << type_name(t) << " m=" << m << " path=" << kernel_path_name(p);
      }
    }
  }
}

void expect_same_rounding(GgmlType weight_type, const std::vector<float>& x, const char* what) {
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t bytes = activation_row_bytes(weight_type, n);
  std::vector<uint8_t> want(bytes);
  ref::quantize_activation_row_ref(weight_type, x.data(), want.data(), n);
  for (KernelPath p : available_kernel_paths()) {
    KernelPathGuard g(p);
    std::vector<uint8_t> got(bytes, 0xCD);
    quantize_activation_row(weight_type, x.data(), got.data(), n);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), bytes), 0)
        << what << " " << type_name(weight_type) << " path=" << kernel_path_name(p);
  }
}

TEST(QuantZmm, ActivationRoundingEdgeCasesBitExact) {
  const int64_t n = 512;
  for (GgmlType wt : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K}) {
    // Ties: with max|x| = 127 the scale is 1, so k + 0.5 rounds half to even.
    std::vector<float> ties(n);
    for (int64_t i = 0; i < n; ++i) ties[i] = (i % 32 == 0) ? 127.f : static_cast<float>(i % 100) - 49.5f;
    expect_same_rounding(wt, ties, "ties");
    std::vector<float> zeros(n, 0.f);
    for (int64_t i = 256; i < n; ++i) zeros[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
    expect_same_rounding(wt, zeros, "zero block");
    // +-max of equal magnitude: the first one decides the sign of q8_K's scale.
    std::vector<float> pm = normal(n, 5, 1.f);
    pm[3] = -4.f;
    pm[10] = 4.f;
    pm[300] = 4.f;
    pm[301] = -4.f;
    expect_same_rounding(wt, pm, "equal +-max");
    std::vector<float> tiny = normal(n, 6, 1e-30f);  // scale 1/amax near the f32 top
    expect_same_rounding(wt, tiny, "tiny");
    std::vector<float> big = normal(n, 8, 3e4f);
    expect_same_rounding(wt, big, "large");
  }
}

}  // namespace
}  // namespace moe::ops
