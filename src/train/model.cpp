// Forward pass of the training model with saved activations (backward is in
// model_backward.cpp). Per layer:
//   x += wo . attn(rope(qnorm(wq xn)), rope(knorm(wk xn)), wv xn),  xn = rmsnorm(x) * attn_norm
//   x += sum_j w_j expert_j(xn) (+ shared(xn)),                      xn = rmsnorm(x) * ffn_norm
// then logits = output . (rmsnorm(x) * output_norm) and the mean cross-entropy.
// The MoE block is route -> dispatch -> per-expert SwiGLU -> combine, as inference.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "ops/math.h"
#include "train/balance.h"
#include "train/model_impl.h"
#include "train/ops.h"
#include "train/profile.h"

namespace moe::train {

template <typename T>
TrainModel<T>::TrainModel(const ModelShape& shape, const RoutingOptions& ro, ThreadPool* pool)
    : routing(ro), layout_(make_layout(shape)), pool_(pool) {
  w.assign(layout_.n_params, T(0));
  g.assign(layout_.n_params, T(0));
  sel_bias.assign(shape.n_layer * shape.n_expert, 0.0f);
  load.assign(shape.n_layer * shape.n_expert, 0);
  acts_.resize(shape.n_layer);
}

template <typename T>
TrainModel<T>::~TrainModel() = default;

template <typename T>
void TrainModel<T>::zero_grad() {
  constexpr int64_t chunk = 1 << 16;
  const int64_t n = static_cast<int64_t>(g.size());
  for_rows<T>(pool_, (n + chunk - 1) / chunk, [&](int64_t c) {
    std::fill(g.begin() + c * chunk, g.begin() + std::min(n, (c + 1) * chunk), T(0));
  });
}
template <typename T>
void TrainModel<T>::reset_load() {
  std::fill(load.begin(), load.end(), 0);
}
template <typename T>
void TrainModel<T>::update_bias() {
  const int64_t X = shape().n_expert;
  for (int64_t il = 0; il < shape().n_layer; ++il)
    bias_update(load.data() + il * X, sel_bias.data() + il * X, X, routing.bias_gamma);
}

template <typename T>
LossStats TrainModel<T>::forward(const int32_t* tokens, const int32_t* targets, int64_t B,
                                 int64_t S, std::vector<T>* logits_out) {
  const ModelShape& s = shape();
  MOE_CHECK(S > 0 && S <= s.n_ctx && B > 0, "train: batch {}x{} does not fit n_ctx {}", B, S, s.n_ctx);
  const int64_t E = s.n_embd, V = s.n_vocab, N = B * S, D = s.head_dim;
  B_ = B, S_ = S, N_ = N;
  tokens_.assign(tokens, tokens + N);
  targets_.assign(targets, targets + N);
  rope_.resize(S * D);
  for (int64_t i = 0; i < S; ++i) ops::rope_cache(rope_.data() + i * D, i, D, s.rope_base);
  const T eps = static_cast<T>(s.rms_eps);
  LossStats st;

  prof::Stage pe(prof::embed);
  std::vector<T> x(N * E);
  const T* emb = w.data() + layout_.tensors[layout_.tok_embd].offset;
  for (int64_t t = 0; t < N; ++t) {
    MOE_CHECK(tokens[t] >= 0 && tokens[t] < V, "train: token id {} out of range [0, {})", tokens[t], V);
    std::copy(emb + tokens[t] * E, emb + (tokens[t] + 1) * E, x.data() + t * E);
  }
  pe.stop();
  for (int il = 0; il < s.n_layer; ++il) {
    Layer& a = acts_[il];
    const LayerParams& p = layout_.layers[il];
    prof::Stage pn(prof::attn_norm);
    a.x = x;
    a.r1.resize(N);
    a.xn1.resize(N * E);
    const T* wn = w.data() + layout_.tensors[p.attn_norm].offset;
    for_rows<T>(pool_, N, [&](int64_t t) {
      a.r1[t] = rms_norm_fwd(a.x.data() + t * E, wn, a.xn1.data() + t * E, E, eps);
    });
    pn.stop();
    attention_fwd(a, il);  // adds into x via a.xm
    prof::Stage pf(prof::ffn_norm);
    x = a.xm;
    a.r2.resize(N);
    a.xn2.resize(N * E);
    const T* fn = w.data() + layout_.tensors[p.ffn_norm].offset;
    for_rows<T>(pool_, N, [&](int64_t t) {
      a.r2[t] = rms_norm_fwd(a.xm.data() + t * E, fn, a.xn2.data() + t * E, E, eps);
    });
    pf.stop();
    moe_fwd(a, il, st);  // FFN output in xnf_
    prof::Stage pc(prof::combine);
    for (int64_t i = 0; i < N * E; ++i) x[i] += xnf_[i];
  }
  // final norm, lm_head, cross-entropy
  prof::Stage pfn(prof::final_norm);
  xf_ = x;
  rf_.resize(N);
  xnf_.resize(N * E);
  const T* on = w.data() + layout_.tensors[layout_.output_norm].offset;
  for_rows<T>(pool_, N, [&](int64_t t) {
    rf_[t] = rms_norm_fwd(xf_.data() + t * E, on, xnf_.data() + t * E, E, eps);
  });
  pfn.stop();
  prof::Stage plm(prof::lm_head);
  probs_.resize(N * V);
  gemm_nt(xnf_.data(), w.data() + layout_.tensors[layout_.output].offset, probs_.data(), N, V, E,
          false, pool_);
  if (logits_out) *logits_out = probs_;
  plm.stop();
  prof::Stage pce(prof::softmax_ce);
  std::vector<double> row_loss(N, 0.0);
  for_rows<T>(pool_, N, [&](int64_t t) {
    T* r = probs_.data() + t * V;
    const T tl = targets[t] >= 0 ? r[targets[t]] : T(0);
    const T lse = softmax_fwd(r, V);
    if (targets[t] >= 0) row_loss[t] = double(lse) - double(tl);
  });
  n_targets_ = 0;
  double sum = 0;
  for (int64_t t = 0; t < N; ++t) {
    if (targets[t] < 0) continue;
    MOE_CHECK(targets[t] < V, "train: target id {} out of range [0, {})", targets[t], V);
    sum += row_loss[t];
    ++n_targets_;
  }
  st.n_targets = n_targets_;
  st.ce = n_targets_ > 0 ? sum / double(n_targets_) : 0.0;
  return st;
}

template <typename T>
void TrainModel<T>::attention_fwd(Layer& a, int il) {
  const ModelShape& s = shape();
  const LayerParams& p = layout_.layers[il];
  const int64_t E = s.n_embd, H = s.n_head, Hk = s.n_head_kv, D = s.head_dim, N = N_, S = S_;
  const int64_t qd = H * D, kd = Hk * D;
  auto W = [&](int i) { return w.data() + layout_.tensors[i].offset; };
  prof::Stage pp(prof::qkv_proj);
  a.qp.resize(N * qd);
  a.kp.resize(N * kd);
  a.v.resize(N * kd);
  if (layout_.tensors[p.wk].offset == layout_.tensors[p.wq].offset + qd * E &&
      layout_.tensors[p.wv].offset == layout_.tensors[p.wk].offset + kd * E) {
    // wq, wk, wv are one [qd + 2 kd, E] matrix in the flat buffer: one product, then split
    const int64_t w3 = qd + 2 * kd;
    std::vector<T> qkv(N * w3);
    gemm_nt(a.xn1.data(), W(p.wq), qkv.data(), N, w3, E, false, pool_);
    for_rows<T>(pool_, N, [&](int64_t t) {
      const T* r = qkv.data() + t * w3;
      std::copy(r, r + qd, a.qp.data() + t * qd);
      std::copy(r + qd, r + qd + kd, a.kp.data() + t * kd);
      std::copy(r + qd + kd, r + w3, a.v.data() + t * kd);
    });
  } else {
    gemm_nt(a.xn1.data(), W(p.wq), a.qp.data(), N, qd, E, false, pool_);
    gemm_nt(a.xn1.data(), W(p.wk), a.kp.data(), N, kd, E, false, pool_);
    gemm_nt(a.xn1.data(), W(p.wv), a.v.data(), N, kd, E, false, pool_);
  }
  pp.stop();
  prof::Stage pr(prof::qk_norm_rope);
  a.q.resize(N * qd);
  a.k.resize(N * kd);
  a.rq.resize(N * H);
  a.rk.resize(N * Hk);
  const T eps = static_cast<T>(s.rms_eps);
  for_rows<T>(pool_, N, [&](int64_t t) {
    const float* cs = rope_.data() + (t % S) * D;
    for (int64_t h = 0; h < H; ++h) {
      T* q = a.q.data() + t * qd + h * D;
      a.rq[t * H + h] = rms_norm_fwd(a.qp.data() + t * qd + h * D, W(p.q_norm), q, D, eps);
      rope_fwd(q, cs, D, false);
    }
    for (int64_t h = 0; h < Hk; ++h) {
      T* k = a.k.data() + t * kd + h * D;
      a.rk[t * Hk + h] = rms_norm_fwd(a.kp.data() + t * kd + h * D, W(p.k_norm), k, D, eps);
      rope_fwd(k, cs, D, false);
    }
  });
  pr.stop();
  prof::Stage pa(prof::attn_core);
  a.P.resize(B_ * H * S * S);
  a.att.resize(N * qd);
  const T scale = static_cast<T>(1.0 / std::sqrt(double(D)));
  const int64_t grp = H / Hk;
  for_rows<T>(pool_, B_ * H, [&](int64_t item) {
    const int64_t b = item / H, h = item % H, hk = h / grp;
    train::attention_fwd(a.q.data() + b * S * qd + h * D, qd, a.k.data() + b * S * kd + hk * D,
                         a.v.data() + b * S * kd + hk * D, kd, a.P.data() + item * S * S,
                         a.att.data() + b * S * qd + h * D, qd, S, D, scale);
  });
  pa.stop();
  prof::Stage po(prof::attn_out);
  a.xm.resize(N * E);
  gemm_nt(a.att.data(), W(p.wo), a.xm.data(), N, E, qd, false, pool_);
  for (int64_t i = 0; i < N * E; ++i) a.xm[i] += a.x[i];
}

// Router -> top-k -> capacity-limited dispatch -> expert SwiGLU -> combine (+ shared).
// The FFN output goes to xnf_ (a free [N, E] buffer until the final norm).
template <typename T>
void TrainModel<T>::moe_fwd(Layer& a, int il, LossStats& st) {
  const ModelShape& s = shape();
  const LayerParams& p = layout_.layers[il];
  const int64_t E = s.n_embd, X = s.n_expert, K = s.n_expert_used, F = s.n_ff_exp, N = N_;
  auto W = [&](int i) { return w.data() + layout_.tensors[i].offset; };
  prof::Stage prt(prof::router);
  a.probs.resize(N * X);
  a.lse.resize(N);
  gemm_nt(a.xn2.data(), W(p.router), a.probs.data(), N, X, E, false, pool_);
  a.sel.resize(N * K);
  a.wsel.resize(N * K);
  a.wsum.resize(N);
  const float* bias = sel_bias.data() + il * X;
  const bool use_bias = routing.balance == Balance::aux_free;
  for_rows<T>(pool_, N, [&](int64_t t) {
    T* pr = a.probs.data() + t * X;
    a.lse[t] = softmax_fwd(pr, X);
    // top-k by (p + bias), ties to the lower index, as moe::route does
    int32_t* e = a.sel.data() + t * K;
    for (int64_t j = 0; j < K; ++j) {
      int32_t best = -1;
      float bv = 0;
      for (int32_t i = 0; i < X; ++i) {
        bool taken = false;
        for (int64_t q = 0; q < j; ++q) taken |= e[q] == i;
        if (taken) continue;
        const float v = static_cast<float>(pr[i]) + (use_bias ? bias[i] : 0.0f);
        if (best < 0 || v > bv) best = i, bv = v;
      }
      e[j] = best;
    }
    T sum = 0;
    for (int64_t j = 0; j < K; ++j) sum += pr[e[j]];
    sum = std::max(sum, static_cast<T>(6.103515625e-5));
    a.wsum[t] = sum;
    for (int64_t j = 0; j < K; ++j) a.wsel[t * K + j] = pr[e[j]] / sum;
  });
  if (routing.z_coef > 0) st.z += z_loss(a.lse.data(), N, static_cast<T>(routing.z_coef));
  a.counts.assign(X, 0);
  for (int64_t i = 0; i < N * K; ++i) a.counts[a.sel[i]]++;
  for (int64_t e = 0; e < X; ++e) load[il * X + e] += a.counts[e];
  if (routing.balance == Balance::aux)
    st.aux += aux_loss(a.probs.data(), a.counts.data(), N, X, K, static_cast<T>(routing.aux_alpha));

  prt.stop();
  prof::Stage pd(prof::dispatch);
  // dispatch (token order; with a capacity, later tokens over it are dropped)
  const int64_t cap = routing.capacity_factor > 0
                          ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                routing.capacity_factor * double(N * K) / double(X))))
                          : N * K;
  std::vector<int64_t> kept(X, 0);
  a.slot_of.assign(N * K, -1);
  for (int64_t i = 0; i < N * K; ++i) {
    const int32_t e = a.sel[i];
    if (kept[e] < cap) a.slot_of[i] = static_cast<int32_t>(kept[e]++);
    else st.n_dropped++;
  }
  a.off.assign(X + 1, 0);
  for (int64_t e = 0; e < X; ++e) a.off[e + 1] = a.off[e] + kept[e];
  const int64_t n_slots = a.off[X];
  a.slot_tok.resize(n_slots);
  for (int64_t i = 0; i < N * K; ++i) {
    if (a.slot_of[i] < 0) continue;
    a.slot_of[i] += static_cast<int32_t>(a.off[a.sel[i]]);
    a.slot_tok[a.slot_of[i]] = static_cast<int32_t>(i / K);
  }
  a.xs.resize(n_slots * E);
  for (int64_t sl = 0; sl < n_slots; ++sl)
    std::copy_n(a.xn2.data() + a.slot_tok[sl] * E, E, a.xs.data() + sl * E);
  pd.stop();
  prof::Stage px(prof::experts);
  a.G.resize(n_slots * F);
  a.U.resize(n_slots * F);
  a.A.resize(n_slots * F);
  a.O.resize(n_slots * E);
  for_experts<T>(pool_, X, a.off, [&](int64_t e, ThreadPool* pp) {  // idle experts cost nothing
    const int64_t o = a.off[e], n = a.off[e + 1] - o;
    gemm_nt(a.xs.data() + o * E, W(p.gate) + e * F * E, a.G.data() + o * F, n, F, E, false, pp);
    gemm_nt(a.xs.data() + o * E, W(p.up) + e * F * E, a.U.data() + o * F, n, F, E, false, pp);
    for_rows<T>(pp, n, [&](int64_t r) {
      const int64_t i = (o + r) * F;
      swiglu_fwd(a.G.data() + i, a.U.data() + i, a.A.data() + i, F);
    });
    gemm_nt(a.A.data() + o * F, W(p.down) + e * E * F, a.O.data() + o * E, n, E, F, false, pp);
  });
  px.stop();
  prof::Stage pc(prof::combine);
  xnf_.assign(N * E, T(0));
  T* out = xnf_.data();
  for_rows<T>(pool_, N, [&](int64_t t) {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t sl = a.slot_of[t * K + j];
      if (sl < 0) continue;
      const T wj = a.wsel[t * K + j];
      const T* o = a.O.data() + sl * E;
      for (int64_t i = 0; i < E; ++i) out[t * E + i] += wj * o[i];
    }
  });
  pc.stop();
  prof::Stage psh(prof::shared_exp);
  if (s.n_ff_shexp > 0) {
    const int64_t Sh = s.n_ff_shexp;
    a.Gs.resize(N * Sh);
    a.Us.resize(N * Sh);
    a.As.resize(N * Sh);
    gemm_nt(a.xn2.data(), W(p.gate_sh), a.Gs.data(), N, Sh, E, false, pool_);
    gemm_nt(a.xn2.data(), W(p.up_sh), a.Us.data(), N, Sh, E, false, pool_);
    swiglu_fwd(a.Gs.data(), a.Us.data(), a.As.data(), N * Sh);
    gemm_nt(a.As.data(), W(p.down_sh), out, N, E, Sh, true, pool_);
  }
}

template class TrainModel<float>;
template class TrainModel<double>;

}  // namespace moe::train
