// The flash-style attention kernels of ops/attention.h against a naive
// double-precision softmax attention, on random data (no zeros), on every compiled
// Highway target: contexts of 1, 7, 64, 200 and 1000 keys, query blocks that
// straddle key-block boundaries and blocks of scattered positions, GQA ratios
// 1/2/4/8, head_dim 64/128 and head_dim_v != head_dim, sliding windows, sinks,
// f16 keys/values, both kernel layouts, and key chunks merged afterwards.
// Error: ||out - ref|| / ||ref|| over all outputs of a case.
// Tolerance 1e-5 for f32 and for f16 inputs alike: the f16 cases give the
// reference the same f16-rounded keys/values, so the kernel's only error is f32
// rounding in both cases (logit sums over D, exp to 1 ulp, sums over <= 1000 keys).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "base/fp16.h"
#include "ops/attention.h"
#include "compare.h"  // tests/common: NaN-aware metrics

namespace moe::ops {
namespace {

constexpr double kTolF32 = 1e-5;
constexpr double kTolF16 = 1e-5;

struct Case {
  int64_t n_keys;  // cache length: keys 0..n_keys-1 exist
  int64_t n_tok;   // tokens in the query block
  int64_t g;       // query heads per KV head
  int64_t D, Dv;
  int64_t window = 0;
  bool sinks = false;
  bool f16 = false;
  bool scattered = false;  // positions in random order, not consecutive
  int64_t chunk = 0;       // > 0: split keys into chunks of this size and merge
  AttentionKernel kernel = AttentionKernel::automatic;

  std::string name() const {
    std::string s = "keys=" + std::to_string(n_keys) + " tok=" + std::to_string(n_tok) +
                    " g=" + std::to_string(g) + " D=" + std::to_string(D) +
                    " Dv=" + std::to_string(Dv);
    if (window) s += " window=" + std::to_string(window);
    if (sinks) s += " sinks";
    if (f16) s += " f16";
    if (scattered) s += " scattered";
    if (chunk) s += " chunk=" + std::to_string(chunk);
    s += kernel == AttentionKernel::automatic       ? " auto"
         : kernel == AttentionKernel::rows_in_lanes ? " rows_in_lanes"
                                                    : " dims_in_lanes";
    return s;
  }
};

// Normal values bounded away from zero.
std::vector<float> nonzero(size_t n, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = dist(rng);
    if (std::abs(x) < 1e-3f * sigma) x = x < 0 ? -1e-3f * sigma : 1e-3f * sigma;
  }
  return v;
}

// Runs one case with two KV heads in the cache (the kernel reads head 1, so
// strides and offsets matter) and a batch whose rows are the query block in
// reverse order. Returns ||out - ref|| / ||ref||.
double run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t Hkv = 2, hk = 1, H = Hkv * c.g, T = c.n_tok;
  const int64_t kst = Hkv * c.D, vst = Hkv * c.Dv;
  std::vector<float> q = nonzero(T * H * c.D, rng, 1.0f);
  std::vector<float> k = nonzero(c.n_keys * kst, rng, 1.0f);
  std::vector<float> v = nonzero(c.n_keys * vst, rng, 1.0f);
  std::vector<float> sinks = nonzero(H, rng, 2.0f);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  if (c.f16) {  // the reference sees the same rounded values
    for (size_t i = 0; i < k.size(); ++i) k[i] = fp16_to_f32(k16[i] = f32_to_fp16(k[i]));
    for (size_t i = 0; i < v.size(); ++i) v[i] = fp16_to_f32(v16[i] = f32_to_fp16(v[i]));
  }
  // Positions: the last n_tok of the context (a prefill chunk), or scattered.
  std::vector<int64_t> pos(T);
  for (int64_t i = 0; i < T; ++i) pos[i] = c.n_keys - T + i;
  if (c.scattered) {
    std::uniform_int_distribution<int64_t> u(0, c.n_keys - 1);
    for (auto& p : pos) p = u(rng);
    pos[0] = c.n_keys - 1;
    std::shuffle(pos.begin(), pos.end(), rng);
  }
  std::vector<int32_t> idx(T);
  for (int64_t i = 0; i < T; ++i) idx[i] = static_cast<int32_t>(T - 1 - i);
  const float scale = 1.5f / std::sqrt(static_cast<float>(c.D));  // peakier than 1/sqrt(D)

  // Reference, in double, per batch row t (q row t, position pos[t], out row t).
  std::vector<double> ref(T * H * c.Dv, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = hk * c.g; h < (hk + 1) * c.g; ++h) {
      const int64_t lo = c.window > 0 ? std::max<int64_t>(0, pos[t] + 1 - c.window) : 0;
      std::vector<double> s;
      double mx = c.sinks ? sinks[h] : -INFINITY;
      for (int64_t j = lo; j <= pos[t]; ++j) {
        double x = 0;
        for (int64_t e = 0; e < c.D; ++e)
          x += double(q[(t * H + h) * c.D + e]) * k[j * kst + hk * c.D + e];
        s.push_back(x * scale);
        mx = std::max(mx, s.back());
      }
      double sum = c.sinks ? std::exp(sinks[h] - mx) : 0.0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      double* o = &ref[(t * H + h) * c.Dv];
      for (int64_t j = lo; j <= pos[t]; ++j)
        for (int64_t e = 0; e < c.Dv; ++e) o[e] += s[j - lo] / sum * v[j * vst + hk * c.Dv + e];
    }
  }

  AttentionParams p{.head_dim = c.D,
                    .head_dim_v = c.Dv,
                    .n_group = c.g,
                    .scale = scale,
                    .window = c.window,
                    .sinks = c.sinks ? sinks.data() + hk * c.g : nullptr,
                    .kernel = c.kernel};
  std::vector<float> out(T * H * c.Dv, 0.0f);
  const AttentionQueries qb{.n_tok = T,
                            .idx = idx.data(),
                            .pos = pos.data(),
                            .q = q.data() + hk * c.g * c.D,
                            .q_stride = H * c.D,
                            .out = out.data() + hk * c.g * c.Dv,
                            .out_stride = H * c.Dv};
  KvRows kr{.stride = kst}, vr{.stride = vst};
  if (c.f16) {
    kr.f16 = k16.data() + hk * c.D;
    vr.f16 = v16.data() + hk * c.Dv;
  } else {
    kr.f32 = k.data() + hk * c.D;
    vr.f32 = v.data() + hk * c.Dv;
  }
  std::vector<float> scratch(attention_scratch_floats(p, T));
  if (c.chunk == 0) {
    attention_block(p, qb, kr, vr, 0, c.n_keys, nullptr, scratch.data());
  } else {
    const int64_t rows = T * c.g, n_parts = (c.n_keys + c.chunk - 1) / c.chunk;
    std::vector<float> state(n_parts * rows * (c.Dv + 2), NAN);
    std::vector<AttentionPartial> parts;
    for (int64_t i = 0; i < n_parts; ++i) {
      float* b = state.data() + i * rows * (c.Dv + 2);
      parts.push_back({.m = b, .l = b + rows, .o = b + 2 * rows});
      attention_block(p, qb, kr, vr, i * c.chunk, (i + 1) * c.chunk, &parts.back(), scratch.data());
    }
    std::reverse(parts.begin(), parts.end());  // the merge takes chunks in any order
    attention_merge(p, qb, parts.data(), n_parts);
  }

  // Batch row t holds the block's token with idx[i] == t; the other KV head's
  // heads stay zero in both. Compare everything.
  double num = 0, den = 0;
  for (size_t x = 0; x < ref.size(); ++x) {
    num += (out[x] - ref[x]) * (out[x] - ref[x]);
    den += ref[x] * ref[x];
  }
  return std::sqrt(num / den);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const AttentionKernel kernels[] = {AttentionKernel::automatic, AttentionKernel::rows_in_lanes,
                                     AttentionKernel::dims_in_lanes};
  for (int64_t n_keys : {1, 7, 64, 200, 1000}) {
    for (int64_t g : {1, 2, 4, 8}) {
      const int64_t D = g % 4 == 0 ? 128 : 64;
      // decode (1 token), a block of ~32 rows, and one that crosses a 64-key boundary
      for (int64_t n_tok : {int64_t{1}, std::max<int64_t>(1, 32 / g), int64_t{11}}) {
        if (n_tok > n_keys) continue;
        for (AttentionKernel k : kernels)
          cases.push_back({n_keys, n_tok, g, D, D, 0, false, false, false, 0, k});
      }
    }
  }
  for (AttentionKernel k : kernels) {
    // blocks across the boundary at 64: positions 58..69, 60..67
    cases.push_back({70, 12, 4, 128, 128, 0, false, false, false, 0, k});
    cases.push_back({68, 8, 2, 64, 64, 0, true, false, false, 0, k});
    // head_dim_v != head_dim
    cases.push_back({200, 8, 4, 128, 64, 0, false, false, false, 0, k});
    cases.push_back({200, 1, 4, 64, 96, 0, true, true, false, 0, k});
    // odd head dims (no whole vectors)
    cases.push_back({100, 5, 3, 72, 40, 0, false, false, false, 0, k});
    // sliding windows and sinks
    for (int64_t w : {1, 5, 100}) {
      cases.push_back({200, 16, 2, 64, 64, w, false, false, false, 0, k});
      cases.push_back({1000, 8, 4, 128, 128, w, true, false, false, 0, k});
      cases.push_back({1000, 1, 8, 64, 64, w, true, true, false, 0, k});
    }
    cases.push_back({1000, 8, 4, 128, 128, 0, true, false, false, 0, k});
    // f16 keys / values
    cases.push_back({200, 8, 4, 128, 128, 0, false, true, false, 0, k});
    cases.push_back({1000, 1, 4, 128, 128, 0, false, true, false, 0, k});
    cases.push_back({64, 32, 1, 64, 64, 0, true, true, false, 0, k});
    // scattered positions (arbitrary batches)
    cases.push_back({200, 9, 4, 128, 128, 0, false, false, true, 0, k});
    cases.push_back({1000, 6, 2, 64, 64, 50, true, true, true, 0, k});
    // key chunks merged (decode split; unaligned chunks too)
    cases.push_back({1000, 1, 4, 128, 128, 0, false, false, false, 256, k});
    cases.push_back({1000, 1, 8, 64, 64, 0, true, true, false, 256, k});
    cases.push_back({200, 8, 4, 128, 128, 30, true, false, false, 64, k});
    cases.push_back({200, 3, 2, 64, 64, 0, true, false, true, 100, k});
  }
  return cases;
}

TEST(Attention, KernelsMatchDoublePrecisionReference) {
  const std::vector<Case> cases = all_cases();
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    ASSERT_STREQ(attention_target_name(), hwy::TargetName(target)) << "dispatch did not switch";
    double worst32 = 0, worst16 = 0;
    uint32_t seed = 1;
    for (const Case& c : cases) {
      const double err = run_case(c, seed++);
      EXPECT_LE(err, c.f16 ? kTolF16 : kTolF32) << hwy::TargetName(target) << ": " << c.name();
      (c.f16 ? worst16 : worst32) = moe::test::nan_max(c.f16 ? worst16 : worst32, err);
    }
    std::printf("[attention] %-10s %zu cases, worst rel err f32 %.2e, f16 %.2e\n",
                hwy::TargetName(target), cases.size(), worst32, worst16);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A row's result does not depend on which other rows share its block: the
// block's key blocks are aligned to absolute positions and masked keys leave the
// state unchanged. Token 0 alone and inside a block of 8 give the same bits.
TEST(Attention, RowResultIndependentOfItsBlock) {
  std::mt19937 rng(5);
  const int64_t g = 4, D = 128, n_keys = 300, T = 8;
  std::vector<float> q = nonzero(T * g * D, rng, 1.0f), k = nonzero(n_keys * D, rng, 1.0f),
                     v = nonzero(n_keys * D, rng, 1.0f);
  std::vector<int64_t> pos(T);
  for (int64_t i = 0; i < T; ++i) pos[i] = 250 + 5 * i;  // the first row sees fewer keys
  std::vector<int32_t> idx(T);
  for (int64_t i = 0; i < T; ++i) idx[i] = static_cast<int32_t>(i);
  const AttentionParams p{.head_dim = D,
                          .head_dim_v = D,
                          .n_group = g,
                          .scale = 0.1f,
                          .kernel = AttentionKernel::rows_in_lanes};
  std::vector<float> all(T * g * D), one(T * g * D);
  std::vector<float> scratch(attention_scratch_floats(p, T));
  const KvRows kr{.f32 = k.data(), .stride = D}, vr{.f32 = v.data(), .stride = D};
  attention_block(p,
                  {.n_tok = T,
                   .idx = idx.data(),
                   .pos = pos.data(),
                   .q = q.data(),
                   .q_stride = g * D,
                   .out = all.data(),
                   .out_stride = g * D},
                  kr, vr, 0, n_keys, nullptr, scratch.data());
  attention_block(p,
                  {.n_tok = 1,
                   .idx = idx.data(),
                   .pos = pos.data(),
                   .q = q.data(),
                   .q_stride = g * D,
                   .out = one.data(),
                   .out_stride = g * D},
                  kr, vr, 0, n_keys, nullptr, scratch.data());
  for (int64_t e = 0; e < g * D; ++e) ASSERT_EQ(all[e], one[e]) << e;
}

}  // namespace
}  // namespace moe::ops
