// Kernels of ops/quant.h against the double-precision reference, on every
// compiled kernel path (scalar, avx2, avx512 as the CPU allows), for every weight
// type, with awkward sizes (odd block counts, rows and tokens that are not tile
// multiples). Also quantize -> dequantize error bounds per type.
// Error measure: ||out - ref|| / ||absref|| over all outputs of a case, where
// absref = sum_i |w_i x_i| (so that a dot with heavy cancellation is not judged
// by its tiny value); tolerances in dot_tolerance().
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

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,  GgmlType::Q8_0,
                           GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,  GgmlType::Q5_1,
                           GgmlType::MXFP4, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// Dot-product tolerance: integer dots are exact per block, only the f32 sums of
// block terms round (1e-6); float types accumulate n products in f32 (1e-5).
double dot_tolerance(GgmlType t) {
  return (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) ? 1e-5 : 1e-6;
}

std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double rel_err(const std::vector<double>& out, const std::vector<double>& ref,
               const std::vector<double>& absref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += absref[i] * absref[i];
  }
  return std::sqrt(num / den);
}

struct Case {
  GgmlType type;
  KernelPath path;
};

class QuantKernelTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { set_kernel_override(GetParam().path); }
  void TearDown() override { set_kernel_override(std::nullopt); }
};

// Random weights [rows, n] and activations [m, n], quantized with the reference.
struct Problem {
  int64_t rows, m, n;
  size_t w_stride, x_stride;
  std::vector<uint8_t> W, X;
  std::vector<double> ref;     // [m, rows]
  std::vector<double> absref;  // [m, rows] sum_i |w_i x_i|
  double err(const std::vector<double>& out, int64_t first = 0) const {
    return rel_err(out, {ref.begin() + first, ref.end()}, {absref.begin() + first, absref.end()});
  }
};

Problem make_problem(GgmlType t, int64_t rows, int64_t m, int64_t n, uint32_t seed) {
  Problem p{rows, m, n, row_bytes(t, n), activation_row_bytes(t, n), {}, {}, {}, {}};
  p.W.resize(p.w_stride * rows);
  p.X.resize(p.x_stride * m);
  const auto w = normal(static_cast<size_t>(rows * n), seed);
  const auto x = normal(static_cast<size_t>(m * n), seed + 1, 2.f);
  for (int64_t r = 0; r < rows; ++r) ref::quantize_row_ref(t, &w[r * n], &p.W[r * p.w_stride], n);
  for (int64_t i = 0; i < m; ++i)
    ref::quantize_activation_row_ref(t, &x[i * n], &p.X[i * p.x_stride], n);
  p.ref.resize(static_cast<size_t>(m * rows));
  p.absref.resize(p.ref.size());
  std::vector<float> wd(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    ref::dequantize_row_ref(vec_dot_type(t), &p.X[i * p.x_stride], xd.data(), n);
    for (int64_t r = 0; r < rows; ++r) {
      p.ref[i * rows + r] = ref::vec_dot_ref(t, &p.W[r * p.w_stride], &p.X[i * p.x_stride], n);
      ref::dequantize_row_ref(t, &p.W[r * p.w_stride], wd.data(), n);
      double a = 0;
      for (int64_t k = 0; k < n; ++k) a += std::fabs(static_cast<double>(wd[k]) * xd[k]);
      p.absref[i * rows + r] = a;
    }
  }
  return p;
}

std::vector<int64_t> sizes(GgmlType t) {
  const int64_t bs = traits(t).block_size;
  if (bs == 256) return {256, 768, 1280};
  if (bs == 32) return {32, 96, 224, 1024};
  return {1, 7, 64, 333, 1024};  // float types: any n
}

TEST_P(QuantKernelTest, VecDotMatchesReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t)) {
    Problem p = make_problem(t, 5, 1, n, 11);
    std::vector<double> out;
    for (int64_t r = 0; r < p.rows; ++r) out.push_back(vec_dot(t, &p.W[r * p.w_stride], p.X.data(), n));
    EXPECT_LT(p.err(out), dot_tolerance(t)) << "n=" << n;
  }
}

TEST_P(QuantKernelTest, GemvMatchesReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t))
    for (int64_t rows : {1, 7, 33}) {
      Problem p = make_problem(t, rows + 2, 1, n, 21);
      const int64_t r0 = 2, r1 = rows + 2;  // rows start at an offset
      std::vector<float> y(rows + 1, -7.f);
      gemv(t, p.W.data(), p.w_stride, p.X.data(), y.data(), r0, r1, n);
      EXPECT_EQ(y[rows], -7.f) << "gemv wrote past r1 - r0";
      std::vector<double> out(y.begin(), y.begin() + rows);
      EXPECT_LT(p.err(out, r0), dot_tolerance(t)) << "n=" << n << " rows=" << rows;
    }
}

TEST_P(QuantKernelTest, GemmMatchesReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t))
    for (int64_t rows : {1, 7, 33})
      for (int64_t m : {1, 3, 5, 17}) {
        Problem p = make_problem(t, rows, m, n, 31 + static_cast<uint32_t>(rows * m));
        const int64_t ldy = rows + 3;
        std::vector<float> Y(static_cast<size_t>(m * ldy), -7.f);
        gemm(t, p.W.data(), p.w_stride, p.X.data(), p.x_stride, m, Y.data(), ldy, 0, rows, n);
        std::vector<double> out;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < rows; ++r) out.push_back(Y[i * ldy + r]);
          for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(Y[i * ldy + r], -7.f);
        }
        EXPECT_LT(p.err(out), dot_tolerance(t))
            << "n=" << n << " rows=" << rows << " m=" << m;
      }
}

TEST_P(QuantKernelTest, ActivationQuantizationMatchesReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t)) {
    const auto x = normal(static_cast<size_t>(n), 41, 3.f);
    const size_t bytes = activation_row_bytes(t, n);
    std::vector<uint8_t> a(bytes), b(bytes);
    quantize_activation_row(t, x.data(), a.data(), n);
    ref::quantize_activation_row_ref(t, x.data(), b.data(), n);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), bytes), 0) << "n=" << n;
  }
}

// Every type has a SIMD kernel on the avx2 and avx512 paths (so the cases above test it).
TEST_P(QuantKernelTest, KernelNameMatchesPath) {
  const std::string name = kernel_name(GetParam().type);
  const bool is_float = GetParam().type == GgmlType::F32 || GetParam().type == GgmlType::F16 ||
                        GetParam().type == GgmlType::BF16;
  switch (GetParam().path) {
    case KernelPath::scalar: EXPECT_EQ(name, "scalar"); break;
    case KernelPath::avx2: EXPECT_EQ(name, is_float ? "hwy_avx2" : "avx2"); break;
    case KernelPath::avx512: EXPECT_EQ(name, is_float ? "hwy_avx3" : "avx512_vnni"); break;
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (auto p : available_kernel_paths())
    for (auto t : kTypes) v.push_back({t, p});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllPaths, QuantKernelTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(type_name(info.param.type)) + "_" +
                                  kernel_path_name(info.param.path);
                         });

// quantize -> dequantize relative RMS error on N(0, 1) data, per type.
struct RoundTrip {
  GgmlType type;
  double max_rel_err;
};
class QuantRoundTripTest : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(QuantRoundTripTest, ErrorWithinBound) {
  const auto [t, bound] = GetParam();
  const int64_t n = 256 * 16;
  const auto x = normal(static_cast<size_t>(n), 51);
  std::vector<uint8_t> q(row_bytes(t, n));
  std::vector<float> y(static_cast<size_t>(n));
  quantize_row(t, x.data(), q.data(), n);
  dequantize_row(t, q.data(), y.data(), n);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(y[i]));
    num += (y[i] - x[i]) * (y[i] - x[i]);
    den += x[i] * x[i];
  }
  const double err = std::sqrt(num / den);
  EXPECT_LT(err, bound);
  if (t != GgmlType::F32) {
    EXPECT_GT(err, 0.0);
  }
  // A second pass changes nothing more than f32 noise: the grid is reproducible.
  std::vector<uint8_t> q2(q.size());
  std::vector<float> y2(y.size());
  quantize_row(t, y.data(), q2.data(), n);
  dequantize_row(t, q2.data(), y2.data(), n);
  double num2 = 0;
  for (int64_t i = 0; i < n; ++i) num2 += (y2[i] - y[i]) * (y2[i] - y[i]);
  EXPECT_LT(std::sqrt(num2 / den), bound) << "requantizing drifted";
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantRoundTripTest,
    ::testing::Values(RoundTrip{GgmlType::F32, 1e-12}, RoundTrip{GgmlType::F16, 1e-3},
                      RoundTrip{GgmlType::BF16, 5e-3}, RoundTrip{GgmlType::Q8_0, 1e-2},
                      RoundTrip{GgmlType::Q4_0, 0.15}, RoundTrip{GgmlType::Q4_1, 0.12},
                      RoundTrip{GgmlType::Q5_0, 0.07}, RoundTrip{GgmlType::Q5_1, 0.06},
                      RoundTrip{GgmlType::MXFP4, 0.2}, RoundTrip{GgmlType::Q4_K, 0.15},
                      RoundTrip{GgmlType::Q5_K, 0.08}, RoundTrip{GgmlType::Q6_K, 0.04}),
    [](const ::testing::TestParamInfo<RoundTrip>& info) {
      return std::string(type_name(info.param.type));
    });

// Large-magnitude and tiny inputs must not produce NaN or Inf in any quantizer.
TEST(QuantRoundTrip, ExtremeScalesStayFinite) {
  for (GgmlType t : kTypes)
    for (float sigma : {1e-6f, 1e3f}) {
      const int64_t n = 512;
      const auto x = normal(static_cast<size_t>(n), 61, sigma);
      std::vector<uint8_t> q(row_bytes(t, n));
      std::vector<float> y(static_cast<size_t>(n));
      quantize_row(t, x.data(), q.data(), n);
      dequantize_row(t, q.data(), y.data(), n);
      for (float v : y) ASSERT_TRUE(std::isfinite(v)) << type_name(t) << " sigma=" << sigma;
    }
}

}  // namespace
}  // namespace moe::ops
