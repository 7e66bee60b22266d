// Finite-difference checks in float64: every backward op of src/train/ops.h on
// random inputs, and the whole model (cross-entropy + aux loss + z-loss, with and
// without a shared expert and a capacity limit) on a tiny random model.
// Central differences with h = 1e-6; tolerance: |analytic - numeric| <=
// 1e-6 + 1e-5 * |numeric| per op, and 1e-4 relative to the largest probed
// gradient for the whole model (top-k selection is piecewise constant; probes
// that flip a routing decision are astronomically unlikely at h = 1e-6).
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "ops/math.h"
#include "train/model.h"
#include "train/ops.h"
#include "compare.h"  // tests/common: NaN-aware metrics

using namespace moe::train;

namespace {

std::vector<double> randn(size_t n, uint64_t seed, double sd = 1.0) {
  std::mt19937_64 r(seed);
  std::normal_distribution<double> d(0.0, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = d(r);
  return v;
}

// Checks d(sum(f(x) * proj))/dx numerically against `analytic` at every element of x.
void check(const char* what, std::vector<double>& x, const std::function<double()>& loss,
           const std::vector<double>& analytic, double atol = 1e-6, double rtol = 1e-5) {
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    const double num = (lp - lm) / (2 * h);
    EXPECT_NEAR(analytic[i], num, atol + rtol * std::abs(num)) << what << " element " << i;
  }
}

double dotv(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST(TrainOps, Matmuls) {
  const int64_t M = 5, N = 7, K = 6;
  auto A = randn(M * K, 1), B = randn(N * K, 2), P = randn(M * N, 3);
  auto loss = [&] {
    std::vector<double> C(M * N);
    gemm_nt(A.data(), B.data(), C.data(), M, N, K, false, nullptr);
    return dotv(C, P);
  };
  std::vector<double> dA(M * K), dB(N * K, 0.0);
  gemm_nn(P.data(), B.data(), dA.data(), M, N, K, false, nullptr);  // dA = P B
  gemm_tn(P.data(), A.data(), dB.data(), M, N, K, true, nullptr);   // dB = P^T A
  check("gemm dA", A, loss, dA);
  check("gemm dB", B, loss, dB);
  // float kernel agrees with the double one
  std::vector<float> Af(A.begin(), A.end()), Bf(B.begin(), B.end()), Cf(M * N);
  std::vector<double> C(M * N);
  gemm_nt(Af.data(), Bf.data(), Cf.data(), M, N, K, false, nullptr);
  gemm_nt(A.data(), B.data(), C.data(), M, N, K, false, nullptr);
  for (int64_t i = 0; i < M * N; ++i) EXPECT_NEAR(Cf[i], C[i], 1e-4);
}

TEST(TrainOps, RmsNorm) {
  const int64_t n = 9;
  auto x = randn(n, 4), w = randn(n, 5), P = randn(n, 6);
  auto loss = [&] {
    std::vector<double> y(n);
    rms_norm_fwd(x.data(), w.data(), y.data(), n, 1e-6);
    return dotv(y, P);
  };
  std::vector<double> y(n), dx(n), dw(n, 0.0);
  const double r = rms_norm_fwd(x.data(), w.data(), y.data(), n, 1e-6);
  rms_norm_bwd(x.data(), w.data(), r, P.data(), dx.data(), dw.data(), n, false);
  check("rms dx", x, loss, dx);
  check("rms dw", w, loss, dw);
}

TEST(TrainOps, RopeSwigluSoftmax) {
  const int64_t n = 8;
  std::vector<float> cs(n);
  moe::ops::rope_cache(cs.data(), 5, n, 10000.0f);
  auto x = randn(n, 7), P = randn(n, 8);
  auto lrope = [&] {
    auto y = x;
    rope_fwd(y.data(), cs.data(), n, false);
    return dotv(y, P);
  };
  auto drope = P;
  rope_fwd(drope.data(), cs.data(), n, true);
  check("rope", x, lrope, drope);

  auto gg = randn(n, 9), u = randn(n, 10);
  auto lsw = [&] {
    std::vector<double> a(n);
    swiglu_fwd(gg.data(), u.data(), a.data(), n);
    return dotv(a, P);
  };
  std::vector<double> dg(n), du(n);
  swiglu_bwd(gg.data(), u.data(), P.data(), dg.data(), du.data(), n);
  check("swiglu dg", gg, lsw, dg);
  check("swiglu du", u, lsw, du);

  auto lsm = [&] {
    auto y = x;
    softmax_fwd(y.data(), n);
    return dotv(y, P);
  };
  auto p = x;
  softmax_fwd(p.data(), n);
  std::vector<double> dx(n);
  softmax_bwd(p.data(), P.data(), dx.data(), n);
  check("softmax", x, lsm, dx);
}

TEST(TrainOps, Attention) {
  const int64_t S = 5, D = 4;
  auto q = randn(S * D, 11), k = randn(S * D, 12), v = randn(S * D, 13), P = randn(S * D, 14);
  const double scale = 0.5;
  auto loss = [&] {
    std::vector<double> pr(S * S), o(S * D);
    attention_fwd(q.data(), D, k.data(), v.data(), D, pr.data(), o.data(), D, S, D, scale);
    return dotv(o, P);
  };
  std::vector<double> pr(S * S), o(S * D), dq(S * D), dk(S * D, 0.0), dv(S * D, 0.0), tmp(S);
  attention_fwd(q.data(), D, k.data(), v.data(), D, pr.data(), o.data(), D, S, D, scale);
  attention_bwd(q.data(), D, k.data(), v.data(), D, pr.data(), P.data(), D, dq.data(), dk.data(),
                dv.data(), S, D, scale, tmp.data());
  check("attn dq", q, loss, dq);
  check("attn dk", k, loss, dk);
  check("attn dv", v, loss, dv);
}

namespace {

void whole_model(int64_t shexp, float capacity, Balance bal) {
  ModelShape s;
  s.n_vocab = 23, s.n_embd = 16, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 4;
  s.n_expert = 4, s.n_expert_used = 2, s.n_ff_exp = 8, s.n_ff_shexp = shexp, s.n_ctx = 6;
  RoutingOptions ro;
  ro.balance = bal;
  ro.aux_alpha = 0.1f;  // large enough that the aux term matters in the check
  ro.z_coef = 0.01f;
  ro.capacity_factor = capacity;
  TrainModel<double> m(s, ro, nullptr);
  init_params(m.layout(), m.w, 7);
  // larger weights than training init so every path carries signal
  for (auto& x : m.w) x *= 10.0;
  for (const auto& t : m.layout().tensors)
    if (t.shape.size() == 1) {
      auto r = randn(t.size, t.offset + 1, 0.3);
      for (size_t i = 0; i < t.size; ++i) m.w[t.offset + i] = 1.0 + r[i];
    }
  if (bal == Balance::aux_free) {
    auto r = randn(m.sel_bias.size(), 99, 0.05);
    for (size_t i = 0; i < r.size(); ++i) m.sel_bias[i] = static_cast<float>(r[i]);
  }
  const int64_t B = 2, S = 6;
  std::vector<int32_t> tok(B * S), tgt(B * S);
  std::mt19937 r(3);
  for (auto& t : tok) t = static_cast<int32_t>(r() % s.n_vocab);
  for (auto& t : tgt) t = static_cast<int32_t>(r() % s.n_vocab);
  tgt[4] = -1;  // an ignored target
  m.zero_grad();
  const auto st = m.forward(tok.data(), tgt.data(), B, S);
  m.backward(1.0);
  std::vector<double> grad = m.g;
  auto loss = [&] { return m.forward(tok.data(), tgt.data(), B, S).total(); };
  if (bal == Balance::aux) {
    EXPECT_GT(st.aux, 0.0);
  }
  if (capacity > 0) {
    EXPECT_GT(st.n_dropped, 0);
  }
  // probe a few entries of every tensor
  double max_g = 0;
  for (double x : grad) max_g = moe::test::nan_max(max_g, std::abs(x));
  std::mt19937 pick(5);
  int probed = 0;
  for (const auto& t : m.layout().tensors) {
    for (int rep = 0; rep < 3; ++rep) {
      const size_t i = t.offset + pick() % t.size;
      const double x0 = m.w[i], h = 1e-6;
      m.w[i] = x0 + h;
      const double lp = loss();
      m.w[i] = x0 - h;
      const double lm = loss();
      m.w[i] = x0;
      const double num = (lp - lm) / (2 * h);
      EXPECT_NEAR(grad[i], num, 1e-4 * max_g + 1e-5 * std::abs(num)) << t.name << " [" << i - t.offset << "]";
      ++probed;
    }
  }
  EXPECT_GT(probed, 40);
}

}  // namespace

TEST(TrainModelGrad, AuxLossDropless) { whole_model(0, 0.0f, Balance::aux); }
TEST(TrainModelGrad, SharedExpertCapacity) { whole_model(12, 1.0f, Balance::aux); }
TEST(TrainModelGrad, AuxFreeBias) { whole_model(0, 0.0f, Balance::aux_free); }
