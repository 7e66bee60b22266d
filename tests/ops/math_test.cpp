// Elementwise activations of ops/math.h (Highway, vectorized exp) against the
// published formulas evaluated in double precision:
//   swiglu:          y = g / (1 + e^-g) * u
//   swiglu_clamped:  gc = min(g, limit), uc = clamp(u, -limit, limit),
//                    y = gc / (1 + e^(-alpha gc)) * (uc + 1)       (gpt-oss)
// Lengths cover whole vectors and tails; inputs are random normals of several
// scales plus large magnitudes (where exp overflows in float without care). Every
// Highway target compiled in and supported by the CPU is checked.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "compare.h"
#include "ops/math.h"

namespace {

using moe::test::rel_l2;
using moe::test::nan_max;

struct Inputs {
  std::vector<float> g, u;
  Inputs(int64_t n, float scale, uint32_t seed) : g(n), u(n) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    for (int64_t i = 0; i < n; ++i) {
      g[i] = nd(rng);
      u[i] = nd(rng);
    }
    // a few large magnitudes: e^-g overflows float for g < -88.7
    if (n > 4) {
      g[0] = -120.0f;
      g[1] = 95.0f;
      g[n / 2] = -89.5f;
      g[n - 1] = 40.0f;
    }
  }
};

constexpr int64_t kLengths[] = {1, 3, 15, 16, 17, 31, 64, 100, 1024, 2880};
constexpr float kScales[] = {0.05f, 1.0f, 6.0f};

double swiglu_worst() {
  double worst = 0;
  for (int64_t n : kLengths) {
    for (float scale : kScales) {
      const Inputs in(n, scale, static_cast<uint32_t>(n * 7 + scale * 100));
      std::vector<float> y(n);
      moe::ops::swiglu(in.g.data(), in.u.data(), y.data(), n);
      std::vector<double> ref(n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = in.g[i];
        ref[i] = g / (1.0 + std::exp(-g)) * in.u[i];
        EXPECT_TRUE(std::isfinite(y[i])) << "n=" << n << " i=" << i << " g=" << g;
        // elementwise: a few float ulps of the result, plus a floor for underflow
        EXPECT_NEAR(y[i], ref[i], 2e-6 * std::abs(ref[i]) + 1e-30) << "n=" << n << " i=" << i << " g=" << g;
      }
      worst = nan_max(worst, rel_l2(y, ref));
    }
  }
  return worst;
}

double swiglu_clamped_worst() {
  const double alpha = 1.702, limit = 7.0;
  double worst = 0;
  for (int64_t n : kLengths) {
    for (float scale : kScales) {
      const Inputs in(n, scale, static_cast<uint32_t>(n * 13 + scale * 10));
      std::vector<float> y(n);
      moe::ops::swiglu_clamped(in.g.data(), in.u.data(), y.data(), n, static_cast<float>(alpha),
                               static_cast<float>(limit));
      std::vector<double> ref(n);
      for (int64_t i = 0; i < n; ++i) {
        const double gc = std::min<double>(in.g[i], limit);
        const double uc = std::clamp<double>(in.u[i], -limit, limit);
        ref[i] = gc / (1.0 + std::exp(-alpha * gc)) * (uc + 1.0);
        EXPECT_TRUE(std::isfinite(y[i])) << "n=" << n << " i=" << i;
        EXPECT_NEAR(y[i], ref[i], 2e-6 * std::abs(ref[i]) + 1e-30) << "n=" << n << " i=" << i << " g=" << in.g[i];
      }
      worst = nan_max(worst, rel_l2(y, ref));
    }
  }
  return worst;
}

// Elementwise failures are reported by the helpers (EXPECT_*); the norms here.
TEST(Math, SwigluMatchesTheFormulaInDoubleOnEveryTarget) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const double a = swiglu_worst(), b = swiglu_clamped_worst();
    EXPECT_LT(a, 1e-6) << hwy::TargetName(target);
    EXPECT_LT(b, 1e-6) << hwy::TargetName(target);
    std::printf("%-8s worst ||y - ref|| / ||ref||: swiglu %.2e, swiglu_clamped %.2e (tolerance 1e-6)\n",
                hwy::TargetName(target), a, b);
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
