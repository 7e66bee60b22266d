// The balancing formulas against hand-computed values: the Switch aux loss
// alpha * N * sum f_i P_i and its gradient, the router z-loss, and the aux-free
// bias update moving selection toward balance. Tolerance 1e-12 (float64).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "train/balance.h"
#include "train/model.h"
#include "train/params.h"

using namespace moe::train;

TEST(TrainBalance, AuxLossByHand) {
  // 2 tokens, 3 experts, top-1: token 0 -> expert 0, token 1 -> expert 0
  const std::vector<double> p = {0.5, 0.3, 0.2, 0.6, 0.1, 0.3};
  const int64_t counts[3] = {2, 0, 0};
  // f = (1, 0, 0), P = (0.55, 0.2, 0.25) -> alpha * 3 * 0.55
  EXPECT_NEAR(aux_loss(p.data(), counts, 2, 3, 1, 0.01), 0.01 * 3 * 0.55, 1e-12);
  EXPECT_NEAR(aux_grad<double>(counts, 0, 2, 3, 1, 0.01), 0.01 * 3 * 1.0 / 2, 1e-12);
  EXPECT_NEAR(aux_grad<double>(counts, 1, 2, 3, 1, 0.01), 0.0, 1e-12);
  // top-2, balanced: f = P = 1/N gives alpha
  const std::vector<double> u(8, 0.25);
  const int64_t c2[4] = {1, 1, 1, 1};
  EXPECT_NEAR(aux_loss(u.data(), c2, 2, 4, 2, 0.1), 0.1, 1e-12);
}

TEST(TrainBalance, ZLossByHand) {
  const std::vector<double> lse = {1.5, -0.5, 2.0};
  EXPECT_NEAR(z_loss(lse.data(), 3, 1e-3), 1e-3 * (2.25 + 0.25 + 4.0) / 3, 1e-12);
}

TEST(TrainBalance, BiasUpdateDirection) {
  const int64_t load[4] = {10, 2, 4, 4};  // mean 5
  std::vector<float> b = {0.1f, 0.0f, -0.1f, 0.0f};
  bias_update(load, b.data(), 4, 0.01f);
  EXPECT_FLOAT_EQ(b[0], 0.09f);   // overloaded: down
  EXPECT_FLOAT_EQ(b[1], 0.01f);   // underloaded: up
  EXPECT_FLOAT_EQ(b[2], -0.09f);
  EXPECT_FLOAT_EQ(b[3], 0.01f);
}

// With selection biases that send every token to the same two experts, repeated aux-free
// bias updates (no weight updates) spread the load: max/mean load falls.
TEST(TrainBalance, AuxFreeBiasBalancesLoad) {
  ModelShape s;
  s.n_vocab = 50, s.n_embd = 16, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 8;
  s.n_expert = 8, s.n_expert_used = 2, s.n_ff_exp = 8, s.n_ctx = 16;
  RoutingOptions ro;
  ro.balance = Balance::aux_free;
  ro.bias_gamma = 0.002f;
  TrainModel<float> m(s, ro, nullptr);
  init_params(m.layout(), m.w, 3);
  // a random router (probabilities spread around 1/8) and biases favouring experts 0 and 1
  const auto& rt = m.layout().tensors[m.layout().layers[0].router];
  for (size_t i = 0; i < rt.size; ++i) m.w[rt.offset + i] *= 10.0f;
  m.sel_bias[0] = m.sel_bias[1] = 0.5f;
  std::vector<int32_t> tok(4 * 16), tgt(4 * 16);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = static_cast<int32_t>((i * 7) % 50), tgt[i] = tok[i];
  auto imbalance = [&] {
    m.reset_load();
    m.forward(tok.data(), tgt.data(), 4, 16);
    int64_t mx = 0, tot = 0;
    for (int64_t e = 0; e < 8; ++e) mx = std::max(mx, m.load[e]), tot += m.load[e];
    return double(mx) * 8 / double(tot);
  };
  const double before = imbalance();
  for (int it = 0; it < 400; ++it) {
    imbalance();
    m.update_bias();
  }
  const double after = imbalance();
  EXPECT_GT(before, 3.9);
  EXPECT_LT(after, before * 0.7) << "before " << before << " after " << after;
}
