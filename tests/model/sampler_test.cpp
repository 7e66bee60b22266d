// Sampler: greedy is argmax; seeded runs repeat; the sampled frequencies follow
// softmax(logits / T) (checked against the formula with a 5-sigma bound); top-k,
// top-p and min-p never return a token outside their sets; repetition penalty
// follows its definition.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "base/error.h"
#include "runtime/sampler.h"

namespace moe {
namespace {

std::vector<float> random_logits(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 2.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Sampler, GreedyIsArgmax) {
  auto l = random_logits(1000, 1);
  Sampler s({.temperature = 0});
  EXPECT_EQ(s.sample(l, {}), argmax(l));
}

TEST(Sampler, SeedReproducible) {
  auto l = random_logits(200, 2);
  SamplerParams p{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42};
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l, {}), b.sample(l, {}));
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  auto l = random_logits(8, 3);
  const float T = 0.7f;
  Sampler s({.temperature = T, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 9});
  const int N = 40000;
  std::vector<int> count(8);
  for (int i = 0; i < N; ++i) count[s.sample(l, {})]++;
  double mx = *std::max_element(l.begin(), l.end()), z = 0;
  for (float x : l) z += std::exp((x - mx) / T);
  for (int i = 0; i < 8; ++i) {
    double p = std::exp((l[i] - mx) / T) / z;
    double sigma = std::sqrt(N * p * (1 - p)) + 1;
    EXPECT_NEAR(count[i], N * p, 5 * sigma) << "token " << i;
  }
}

TEST(Sampler, TopKTopPMinPStayInTheirSets) {
  auto l = random_logits(100, 4);
  std::vector<int> order(100);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
  Sampler k({.temperature = 1.5f, .top_k = 5, .top_p = 1.0f, .min_p = 0.0f, .seed = 1});
  std::set<int> top5(order.begin(), order.begin() + 5);
  for (int i = 0; i < 2000; ++i) EXPECT_TRUE(top5.count(k.sample(l, {})));

  // top-p: nucleus from the softmax at T = 1
  double mx = l[order[0]], z = 0;
  for (float x : l) z += std::exp(x - mx);
  std::set<int> nucleus;
  double cum = 0;
  for (int id : order) {
    nucleus.insert(id);
    cum += std::exp(l[id] - mx) / z;
    if (cum >= 0.5) break;
  }
  Sampler p({.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .min_p = 0.0f, .seed = 2});
  for (int i = 0; i < 2000; ++i) EXPECT_TRUE(nucleus.count(p.sample(l, {})));

  Sampler m({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.2f, .seed = 3});
  for (int i = 0; i < 2000; ++i) {
    int id = m.sample(l, {});
    EXPECT_GE(std::exp(l[id] - mx), 0.2 * 1.0 - 1e-6);
  }
}

TEST(Sampler, RepetitionPenalty) {
  std::vector<float> l = {2.0f, 1.9f, -1.0f, 0.5f};
  Sampler s({.temperature = 0, .repeat_penalty = 1.2f});
  std::vector<int32_t> hist = {0};
  EXPECT_EQ(s.sample(l, hist), 1);  // 2.0 / 1.2 < 1.9
  Sampler none({.temperature = 0, .repeat_penalty = 1.0f});
  EXPECT_EQ(none.sample(l, hist), 0);
}

TEST(Sampler, BadParametersAreErrors) {
  EXPECT_THROW(Sampler({.top_p = 0.0f}), Error);
  EXPECT_THROW(Sampler({.min_p = 2.0f}), Error);
}

}  // namespace
}  // namespace moe
