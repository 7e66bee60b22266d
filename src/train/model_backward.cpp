// Backward pass of the training model: cross-entropy -> lm_head -> final norm,
// then per layer in reverse: MoE (combine, experts, router with the aux and z
// losses, shared expert) -> ffn norm -> attention (wo, softmax attention, rope,
// q/k norm, projections) -> attn norm, and the embedding rows last (in token
// order, so the sums are deterministic).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "train/balance.h"
#include "train/model_impl.h"
#include "train/ops.h"
#include "train/profile.h"

namespace moe::train {

template <typename T>
void TrainModel<T>::backward(T scale) {
  const ModelShape& s = shape();
  const int64_t E = s.n_embd, V = s.n_vocab, N = N_;
  scale_ = scale;
  auto W = [&](int i) { return w.data() + layout_.tensors[i].offset; };
  auto Gd = [&](int i) { return g.data() + layout_.tensors[i].offset; };
  // dlogits = scale * (softmax - onehot) / n_targets, in place over probs_
  prof::Stage pce(prof::b_ce);
  const T inv = n_targets_ > 0 ? scale / T(n_targets_) : T(0);
  for_rows<T>(pool_, N, [&](int64_t t) {
    T* r = probs_.data() + t * V;
    if (targets_[t] < 0) {
      std::fill(r, r + V, T(0));
      return;
    }
    r[targets_[t]] -= T(1);
    for (int64_t i = 0; i < V; ++i) r[i] *= inv;
  });
  pce.stop();
  prof::Stage plm(prof::b_lm_head);
  gemm_tn(probs_.data(), xnf_.data(), Gd(layout_.output), N, V, E, true, pool_);
  std::vector<T> dxn(N * E), dx(N * E);
  gemm_nn(probs_.data(), W(layout_.output), dxn.data(), N, V, E, false, pool_);
  plm.stop();
  // final norm: its weight gradient is a sum over rows, done serially in row order
  {
    prof::Stage pfn(prof::b_final_norm);
    const T* on = W(layout_.output_norm);
    std::vector<T> dw_rows(N * E, T(0));
    for_rows<T>(pool_, N, [&](int64_t t) {
      rms_norm_bwd(xf_.data() + t * E, on, rf_[t], dxn.data() + t * E, dx.data() + t * E,
                   dw_rows.data() + t * E, E, false);
    });
    T* gw = Gd(layout_.output_norm);
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < E; ++i) gw[i] += dw_rows[t * E + i];
  }
  std::vector<T> dw_rows(N * E);
  for (int il = static_cast<int>(s.n_layer) - 1; il >= 0; --il) {
    Layer& a = acts_[il];
    const LayerParams& p = layout_.layers[il];
    // FFN block: x_out = xm + ffn(xn2)
    moe_bwd(a, il, dx.data(), dxn.data());
    prof::Stage pfn(prof::b_ffn_norm);
    std::fill(dw_rows.begin(), dw_rows.end(), T(0));
    for_rows<T>(pool_, N, [&](int64_t t) {
      rms_norm_bwd(a.xm.data() + t * E, W(p.ffn_norm), a.r2[t], dxn.data() + t * E,
                   dx.data() + t * E, dw_rows.data() + t * E, E, true);
    });
    T* gw = Gd(p.ffn_norm);
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < E; ++i) gw[i] += dw_rows[t * E + i];
    pfn.stop();
    attention_bwd(a, il, dx.data());
  }
  prof::Stage pe(prof::b_embed);
  T* ge = Gd(layout_.tok_embd);
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < E; ++i) ge[tokens_[t] * E + i] += dx[t * E + i];
}

// dx: gradient of the block output (in), updated to the gradient of its input.
template <typename T>
void TrainModel<T>::attention_bwd(Layer& a, int il, T* dx) {
  const ModelShape& s = shape();
  const LayerParams& p = layout_.layers[il];
  const int64_t E = s.n_embd, H = s.n_head, Hk = s.n_head_kv, D = s.head_dim, N = N_, S = S_;
  const int64_t qd = H * D, kd = Hk * D, grp = H / Hk;
  auto W = [&](int i) { return w.data() + layout_.tensors[i].offset; };
  auto Gd = [&](int i) { return g.data() + layout_.tensors[i].offset; };
  prof::Stage po(prof::b_attn_out);
  gemm_tn(dx, a.att.data(), Gd(p.wo), N, E, qd, true, pool_);
  std::vector<T> datt(N * qd), dq(N * qd), dk(N * kd, T(0)), dv(N * kd, T(0));
  gemm_nn(dx, W(p.wo), datt.data(), N, E, qd, false, pool_);
  po.stop();
  prof::Stage pa(prof::b_attn_core);
  const T scale = static_cast<T>(1.0 / std::sqrt(double(D)));
  for_rows<T>(pool_, B_ * Hk, [&](int64_t item) {
    const int64_t b = item / Hk, hk = item % Hk;
    std::vector<T> tmp(S);
    for (int64_t h = hk * grp; h < (hk + 1) * grp; ++h) {
      const int64_t qo = b * S * qd + h * D, ko = b * S * kd + hk * D;
      train::attention_bwd(a.q.data() + qo, qd, a.k.data() + ko, a.v.data() + ko, kd,
                           a.P.data() + (b * H + h) * S * S, datt.data() + qo, qd, dq.data() + qo,
                           dk.data() + ko, dv.data() + ko, S, D, scale, tmp.data());
    }
  });
  pa.stop();
  prof::Stage pr(prof::b_qk_norm_rope);
  // rope^-1 and q/k norm backward, per token; norm weight grads per row then summed in order
  std::vector<T> dqn_w(N * D, T(0)), dkn_w(N * D, T(0));
  std::vector<T> dqp(N * qd), dkp(N * kd);
  for_rows<T>(pool_, N, [&](int64_t t) {
    const float* cs = rope_.data() + (t % S) * D;
    for (int64_t h = 0; h < H; ++h) {
      T* d = dq.data() + t * qd + h * D;
      rope_fwd(d, cs, D, true);
      rms_norm_bwd(a.qp.data() + t * qd + h * D, W(p.q_norm), a.rq[t * H + h], d,
                   dqp.data() + t * qd + h * D, dqn_w.data() + t * D, D, false);
    }
    for (int64_t h = 0; h < Hk; ++h) {
      T* d = dk.data() + t * kd + h * D;
      rope_fwd(d, cs, D, true);
      rms_norm_bwd(a.kp.data() + t * kd + h * D, W(p.k_norm), a.rk[t * Hk + h], d,
                   dkp.data() + t * kd + h * D, dkn_w.data() + t * D, D, false);
    }
  });
  T* gq = Gd(p.q_norm);
  T* gk = Gd(p.k_norm);
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < D; ++i) gq[i] += dqn_w[t * D + i], gk[i] += dkn_w[t * D + i];
  pr.stop();
  prof::Stage pp(prof::b_qkv_proj);
  std::vector<T> dxn(N * E);
  const bool qkv_adjacent = layout_.tensors[p.wk].offset == layout_.tensors[p.wq].offset + qd * E &&
                            layout_.tensors[p.wv].offset == layout_.tensors[p.wk].offset + kd * E;
  if (qkv_adjacent) {
    // wq, wk, wv are one [qd + 2 kd, E] matrix: d[q k v] as one [N, qd + 2 kd] operand,
    // one weight-gradient product and one input-gradient product
    const int64_t w3 = qd + 2 * kd;
    std::vector<T> d3(N * w3);
    for_rows<T>(pool_, N, [&](int64_t t) {
      T* r = d3.data() + t * w3;
      std::copy(dqp.data() + t * qd, dqp.data() + (t + 1) * qd, r);
      std::copy(dkp.data() + t * kd, dkp.data() + (t + 1) * kd, r + qd);
      std::copy(dv.data() + t * kd, dv.data() + (t + 1) * kd, r + qd + kd);
    });
    gemm_tn(d3.data(), a.xn1.data(), Gd(p.wq), N, w3, E, true, pool_);
    gemm_nn(d3.data(), W(p.wq), dxn.data(), N, w3, E, false, pool_);
  } else {
    gemm_tn(dqp.data(), a.xn1.data(), Gd(p.wq), N, qd, E, true, pool_);
    gemm_tn(dkp.data(), a.xn1.data(), Gd(p.wk), N, kd, E, true, pool_);
    gemm_tn(dv.data(), a.xn1.data(), Gd(p.wv), N, kd, E, true, pool_);
    gemm_nn(dqp.data(), W(p.wq), dxn.data(), N, qd, E, false, pool_);
    gemm_nn(dkp.data(), W(p.wk), dxn.data(), N, kd, E, true, pool_);
    gemm_nn(dv.data(), W(p.wv), dxn.data(), N, kd, E, true, pool_);
  }
  pp.stop();
  prof::Stage pn(prof::b_attn_norm);
  std::vector<T> dw_rows(N * E, T(0));
  for_rows<T>(pool_, N, [&](int64_t t) {
    rms_norm_bwd(a.x.data() + t * E, W(p.attn_norm), a.r1[t], dxn.data() + t * E, dx + t * E,
                 dw_rows.data() + t * E, E, true);
  });
  T* gw = Gd(p.attn_norm);
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < E; ++i) gw[i] += dw_rows[t * E + i];
}

// dout [N,E]: gradient of the FFN output; dxn [N,E] receives the gradient of its input.
template <typename T>
void TrainModel<T>::moe_bwd(Layer& a, int il, const T* dout, T* dxn) {
  const ModelShape& s = shape();
  const LayerParams& p = layout_.layers[il];
  const int64_t E = s.n_embd, X = s.n_expert, K = s.n_expert_used, F = s.n_ff_exp, N = N_;
  auto W = [&](int i) { return w.data() + layout_.tensors[i].offset; };
  auto Gd = [&](int i) { return g.data() + layout_.tensors[i].offset; };
  const int64_t n_slots = a.off[X];
  // combine backward
  prof::Stage pc(prof::b_combine);
  std::vector<T> dO(n_slots * E), dw(N * K, T(0));
  for_rows<T>(pool_, N, [&](int64_t t) {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t sl = a.slot_of[t * K + j];
      if (sl < 0) continue;
      const T wj = a.wsel[t * K + j];
      const T* d = dout + t * E;
      const T* o = a.O.data() + sl * E;
      T acc = 0;
      for (int64_t i = 0; i < E; ++i) {
        dO[sl * E + i] = wj * d[i];
        acc += d[i] * o[i];
      }
      dw[t * K + j] = acc;
    }
  });
  pc.stop();
  prof::Stage px(prof::b_experts);
  // experts
  std::vector<T> dxs(n_slots * E);
  for_experts<T>(pool_, X, a.off, [&](int64_t e, ThreadPool* pp) {
    const int64_t o = a.off[e], n = a.off[e + 1] - o;
    thread_local std::vector<T> buf;
    if (buf.size() < static_cast<size_t>(3 * n * F)) buf.resize(3 * n * F);
    T* dA = buf.data();
    T* dG = dA + n * F;
    T* dU = dG + n * F;
    gemm_nn(dO.data() + o * E, W(p.down) + e * E * F, dA, n, E, F, false, pp);
    gemm_tn(dO.data() + o * E, a.A.data() + o * F, Gd(p.down) + e * E * F, n, E, F, true, pp);
    for_rows<T>(pp, n, [&](int64_t r) {
      swiglu_bwd(a.G.data() + (o + r) * F, a.U.data() + (o + r) * F, dA + r * F, dG + r * F, dU + r * F, F);
    });
    if constexpr (std::is_same_v<T, float>) {
      // dgate += dG^T xs, dup += dU^T xs: xs packed once for both
      thread_local std::vector<float> xp;
      const int64_t sz = sgemm_packed_b_size(n, E);
      if (xp.size() < static_cast<size_t>(sz)) xp.resize(sz);
      sgemm_pack_b(n, E, a.xs.data() + o * E, E, 1, xp.data(), pp);
      const int64_t ps = n * sgemm_panel_width();
      sgemm_prepacked(F, E, n, dG, 1, F, xp.data(), ps, Gd(p.gate) + e * F * E, E, true, pp);
      sgemm_prepacked(F, E, n, dU, 1, F, xp.data(), ps, Gd(p.up) + e * F * E, E, true, pp);
    } else {
      gemm_tn(dG, a.xs.data() + o * E, Gd(p.gate) + e * F * E, n, F, E, true, pp);
      gemm_tn(dU, a.xs.data() + o * E, Gd(p.up) + e * F * E, n, F, E, true, pp);
    }
    gemm_nn(dG, W(p.gate) + e * F * E, dxs.data() + o * E, n, F, E, false, pp);
    gemm_nn(dU, W(p.up) + e * F * E, dxs.data() + o * E, n, F, E, true, pp);
  });
  px.stop();
  prof::Stage pr(prof::b_router);
  // router: renormalised top-k weights, aux loss, z-loss, softmax
  std::vector<T> dlog(N * X);
  const T n_inv = T(1) / T(N);
  for_rows<T>(pool_, N, [&](int64_t t) {
    T* dl = dlog.data() + t * X;
    std::vector<T> dp(X, T(0));
    const T* wv = a.wsel.data() + t * K;
    T dot = 0;
    for (int64_t j = 0; j < K; ++j) dot += dw[t * K + j] * wv[j];
    const bool clamped = a.wsum[t] <= static_cast<T>(6.103515625e-5);
    for (int64_t j = 0; j < K; ++j)
      dp[a.sel[t * K + j]] += (dw[t * K + j] - (clamped ? T(0) : dot)) / a.wsum[t];
    if (routing.balance == Balance::aux)
      for (int64_t i = 0; i < X; ++i)
        dp[i] += aux_grad(a.counts.data(), i, N, X, K, static_cast<T>(routing.aux_alpha)) * scale_;
    const T* pr = a.probs.data() + t * X;
    softmax_bwd(pr, dp.data(), dl, X);
    if (routing.z_coef > 0) {
      const T c = T(2) * static_cast<T>(routing.z_coef) * a.lse[t] * n_inv * scale_;
      for (int64_t i = 0; i < X; ++i) dl[i] += c * pr[i];
    }
  });
  gemm_tn(dlog.data(), a.xn2.data(), Gd(p.router), N, X, E, true, pool_);
  gemm_nn(dlog.data(), W(p.router), dxn, N, X, E, false, pool_);
  pr.stop();
  prof::Stage pc2(prof::b_combine);
  for_rows<T>(pool_, N, [&](int64_t t) {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t sl = a.slot_of[t * K + j];
      if (sl < 0) continue;
      for (int64_t i = 0; i < E; ++i) dxn[t * E + i] += dxs[sl * E + i];
    }
  });
  pc2.stop();
  prof::Stage psh(prof::b_shared_exp);
  if (s.n_ff_shexp > 0) {
    const int64_t Sh = s.n_ff_shexp;
    std::vector<T> dAs(N * Sh), dGs(N * Sh), dUs(N * Sh);
    gemm_nn(dout, W(p.down_sh), dAs.data(), N, E, Sh, false, pool_);
    gemm_tn(dout, a.As.data(), Gd(p.down_sh), N, E, Sh, true, pool_);
    swiglu_bwd(a.Gs.data(), a.Us.data(), dAs.data(), dGs.data(), dUs.data(), N * Sh);
    gemm_tn(dGs.data(), a.xn2.data(), Gd(p.gate_sh), N, Sh, E, true, pool_);
    gemm_tn(dUs.data(), a.xn2.data(), Gd(p.up_sh), N, Sh, E, true, pool_);
    gemm_nn(dGs.data(), W(p.gate_sh), dxn, N, Sh, E, true, pool_);
    gemm_nn(dUs.data(), W(p.up_sh), dxn, N, Sh, E, true, pool_);
  }
}

#define MOE_TRAIN_INST(T)                                                       \
  template void TrainModel<T>::backward(T);                                     \
  template void TrainModel<T>::attention_bwd(Layer&, int, T*);                  \
  template void TrainModel<T>::moe_bwd(Layer&, int, const T*, T*);
MOE_TRAIN_INST(float)
MOE_TRAIN_INST(double)

}  // namespace moe::train
