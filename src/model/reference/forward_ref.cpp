// Reference forward pass (see forward_ref.h). Written from the formulas in the
// fixtures' README and the papers, independently of model/forward.cpp: it shares
// only the weight views and the scalar dequantizers of ops/reference.
#include "model/reference/forward_ref.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/fp16.h"
#include "ops/quant.h"
#include "ops/reference/quant_ref.h"

namespace moe::reference {
namespace {

using Vec = std::vector<double>;

// Row r of expert slice e of W, dequantized.
Vec weight_row(const Tensor& W, int64_t e, int64_t r) {
  std::vector<float> tmp(W.ne[0]);
  ops::ref::dequantize_row_ref(W.type, W.matrix(e) + r * W.row_bytes, tmp.data(), W.ne[0]);
  return Vec(tmp.begin(), tmp.end());
}

Vec vec_f32(const Tensor& t) { return Vec(t.f32(), t.f32() + t.ne[0]); }

int64_t g_near_ties = 0;  // see forward_ref.h; reset per forward()
constexpr double kTieRel = 5e-7;  // float noise between two correct implementations

// Counts values whose scaled magnitude lies within kTieRel (relative) of a .5 rounding
// boundary: q8_0/q8_1 scale blocks of 32 by 127/amax, q8_K blocks of 256 by 127/|m|.
// A 1e-7 difference in such a value may round it the other way.
void count_near_ties(GgmlType act, const std::vector<float>& x) {
  int64_t block = 0;
  if (act == GgmlType::Q8_0 || act == GgmlType::Q8_1) block = 32;
  if (act == GgmlType::Q8_K) block = 256;
  if (block == 0) return;
  for (size_t b0 = 0; b0 + block <= x.size(); b0 += block) {
    float amax = 0;
    for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::abs(x[b0 + i]));
    if (amax == 0) continue;
    if (block == 32) {  // the block scale d = fp16(amax / 127) is rounded too
      const double d = double(amax) / 127.0;
      const uint16_t h = f32_to_fp16(static_cast<float>(d));
      const double lo = fp16_to_f32(h), ulp = double(fp16_to_f32(h + 1)) - lo;
      const double frac = (d - lo) / ulp;
      if (std::abs(std::abs(frac) - 0.5) < kTieRel * d / ulp) ++g_near_ties;
    }
    for (int64_t i = 0; i < block; ++i) {
      const double v = std::abs(double(x[b0 + i]) * 127.0 / amax);
      const double frac = v - std::floor(v);
      if (std::abs(frac - 0.5) < kTieRel * std::max(v, 1.0)) ++g_near_ties;
    }
  }
}

// y = W x, W [n_in, n_out] (ggml order), slice e.
Vec matvec(const Tensor& W, const Vec& x, bool round, int64_t e = 0) {
  Vec y(W.ne[1]);
  const int64_t n = W.ne[0];
  if (round && ops::vec_dot_type(W.type) != GgmlType::F32) {
    std::vector<float> xf(x.begin(), x.end());
    std::vector<uint8_t> xq(ops::activation_row_bytes(W.type, n));
    ops::ref::quantize_activation_row_ref(W.type, xf.data(), xq.data(), n);
    count_near_ties(ops::vec_dot_type(W.type), xf);
    for (int64_t r = 0; r < W.ne[1]; ++r)
      y[r] = ops::ref::vec_dot_ref(W.type, W.matrix(e) + r * W.row_bytes, xq.data(), n);
    return y;
  }
  for (int64_t r = 0; r < W.ne[1]; ++r) {
    Vec w = weight_row(W, e, r);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += w[i] * x[i];
    y[r] = s;
  }
  return y;
}

Vec rmsnorm(const Vec& x, const double* w, int64_t off, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
  const double s = 1.0 / std::sqrt(ss / n + eps);
  Vec y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[off + i] * s * (w ? w[i] : 1.0);
  return y;
}

double silu(double g) { return g / (1.0 + std::exp(-g)); }

Vec swiglu_ffn(const Tensor& gate, const Tensor& up, const Tensor& down, const Vec& x,
               bool round, int64_t e = 0) {
  Vec g = matvec(gate, x, round, e), u = matvec(up, x, round, e);
  for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
  return matvec(down, g, round, e);
}

// RoPE on x[off .. off + n_rot): NORM pairs (2i, 2i+1), NEOX pairs (i, i + n_rot/2).
// The angle pos * base^(-2i/n_rot) is part of the function llama.cpp's files are
// evaluated with, and llama.cpp forms it in float as pos * s^i with s = base^(-2/n_rot)
// (a running product); we form it the same way so that rounded activations agree.
// YaRN (README of the fixtures): theta = t/s * (1 - ramp_i) + t * ramp_i with the ramp
// over the correction dims, and cos/sin times mscale.
void rope(Vec& x, int64_t off, int64_t pos, const ModelConfig& c) {
  const int64_t n_rot = c.n_rot;
  const bool neox = c.rope_type == RopeType::neox;
  const float s = std::pow(static_cast<float>(c.rope_base), -2.0f / static_cast<float>(n_rot));
  const double d = static_cast<double>(n_rot);
  auto corr = [&](double b) {
    return d * std::log(c.rope_n_ctx_orig / (b * 2 * M_PI)) / (2 * std::log(double(c.rope_base)));
  };
  const double lo = std::max(0.0, std::floor(corr(c.yarn_beta_fast)));
  const double hi = std::min(d - 1, std::ceil(corr(c.yarn_beta_slow)));
  float t = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i, t *= s) {
    double th = t, ms = 1.0;
    if (c.yarn) {
      const double ramp = 1.0 - std::clamp((i - lo) / std::max(0.001, hi - lo), 0.0, 1.0);
      th = t * double(c.rope_freq_scale) * (1 - ramp) + t * ramp;
      ms = c.rope_mscale;
    }
    const int64_t a = off + (neox ? i : 2 * i), b = off + (neox ? i + n_rot / 2 : 2 * i + 1);
    const double x0 = x[a], x1 = x[b], cs = std::cos(th) * ms, sn = std::sin(th) * ms;
    x[a] = x0 * cs - x1 * sn;
    x[b] = x0 * sn + x1 * cs;
  }
}

void add(Vec& y, const Tensor& bias, int64_t col = 0) {
  if (!bias.present()) return;
  for (size_t i = 0; i < y.size(); ++i) y[i] += bias.f32()[col * y.size() + i];
}

// softmax over s with an optional sink logit in the denominator; returns weights.
Vec softmax_sink(const Vec& s, bool has_sink, double sink) {
  double mx = has_sink ? sink : -INFINITY;
  for (double v : s) mx = std::max(mx, v);
  double sum = has_sink ? std::exp(sink - mx) : 0.0;
  Vec w(s.size());
  for (size_t j = 0; j < s.size(); ++j) sum += (w[j] = std::exp(s[j] - mx));
  for (auto& v : w) v /= sum;
  return w;
}

struct Cache {
  std::vector<std::vector<Vec>> k, v;  // [n_layer][pos] -> full per-head keys / values
};

// Standard attention (GQA, biases, q/k norm, rope, sliding window, sinks).
Vec attention_standard(const Model& m, int64_t il, const Vec& h, int64_t pos, Cache& cache, bool round) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layers[il];
  const int64_t H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim, Dv = c.head_dim_v;
  Vec q = matvec(L.wq, h, round), k = matvec(L.wk, h, round), v = matvec(L.wv, h, round);
  add(q, L.bq);
  add(k, L.bk);
  add(v, L.bv);
  if (c.qk_norm == QkNorm::per_head) {
    Vec qn = vec_f32(L.q_norm), kn = vec_f32(L.k_norm);
    for (int64_t hh = 0; hh < H; ++hh) {
      Vec r = rmsnorm(q, qn.data(), hh * D, D, c.rms_eps);
      std::copy(r.begin(), r.end(), q.begin() + hh * D);
    }
    for (int64_t hh = 0; hh < Hkv; ++hh) {
      Vec r = rmsnorm(k, kn.data(), hh * D, D, c.rms_eps);
      std::copy(r.begin(), r.end(), k.begin() + hh * D);
    }
  } else if (c.qk_norm == QkNorm::full) {
    Vec qn = vec_f32(L.q_norm), kn = vec_f32(L.k_norm);
    q = rmsnorm(q, qn.data(), 0, H * D, c.rms_eps);
    k = rmsnorm(k, kn.data(), 0, Hkv * D, c.rms_eps);
  }
  for (int64_t hh = 0; hh < H; ++hh) rope(q, hh * D, pos, c);
  for (int64_t hh = 0; hh < Hkv; ++hh) rope(k, hh * D, pos, c);
  cache.k[il].push_back(k);
  cache.v[il].push_back(v);

  // Causal attention; kv head j serves q heads j*g .. j*g+g-1; sliding window on even layers.
  const int64_t j0 = c.layer_is_swa(il) ? std::max<int64_t>(0, pos - c.n_swa + 1) : 0;
  Vec att(H * Dv, 0.0);
  const int64_t g = H / Hkv;
  for (int64_t hh = 0; hh < H; ++hh) {
    const int64_t kvh = hh / g;
    Vec s;
    for (int64_t j = j0; j <= pos; ++j) {
      double d = 0;
      for (int64_t i = 0; i < D; ++i) d += q[hh * D + i] * cache.k[il][j][kvh * D + i];
      s.push_back(d * c.attn_scale);
    }
    Vec w = softmax_sink(s, L.sinks.present(), L.sinks.present() ? L.sinks.f32()[hh] : 0.0);
    for (int64_t j = j0; j <= pos; ++j)
      for (int64_t i = 0; i < Dv; ++i) att[hh * Dv + i] += w[j - j0] * cache.v[il][j][kvh * Dv + i];
  }
  Vec o = matvec(L.wo, att, round);
  add(o, L.bo);
  return o;
}

// MLA. Exact arithmetic: the naive (expanded) form, per head k = [W_kb^T c, k_pe],
// v = W_vb c, so it checks the absorbed form of model/mla.cpp. With rounded
// activations the two forms round different vectors (q_nope vs the latent), so the
// reference then follows the absorbed order of products that llama.cpp and the
// CPU path use: q_abs = W_kb q_nope, score = q_abs.c + q_pe.k_pe, out_h = W_vb o_lat.
Vec attention_mla(const Model& m, int64_t il, const Vec& h, int64_t pos, Cache& cache, bool round) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layers[il];
  const int64_t H = c.n_head, R = c.n_rot, Nn = c.qk_nope, Dq = Nn + R, Lk = c.kv_lora_rank, Vh = c.v_head;
  Vec q;
  if (c.q_lora_rank > 0) {
    Vec qa = matvec(L.wq_a, h, round);
    Vec qan = vec_f32(L.q_a_norm);
    q = matvec(L.wq_b, rmsnorm(qa, qan.data(), 0, c.q_lora_rank, c.rms_eps), round);
  } else {
    q = matvec(L.wq, h, round);
  }
  Vec kv = matvec(L.wkv_a, h, round);
  Vec kvn = vec_f32(L.kv_a_norm);
  Vec lat = rmsnorm(kv, kvn.data(), 0, Lk, c.rms_eps);
  Vec kpe(kv.begin() + Lk, kv.end());
  rope(kpe, 0, pos, c);
  for (int64_t hh = 0; hh < H; ++hh) rope(q, hh * Dq + Nn, pos, c);
  if (round) {
    cache.k[il].push_back(kv);  // [lat | k_pe]
    std::copy(lat.begin(), lat.end(), cache.k[il].back().begin());
    std::copy(kpe.begin(), kpe.end(), cache.k[il].back().begin() + Lk);
    Vec att(H * Vh, 0.0);
    for (int64_t hh = 0; hh < H; ++hh) {
      Vec qn(q.begin() + hh * Dq, q.begin() + hh * Dq + Nn);
      Vec qa = matvec(L.wk_b, qn, round, hh);
      Vec s;
      for (int64_t j = 0; j <= pos; ++j) {
        const Vec& kj = cache.k[il][j];
        double d = 0;
        for (int64_t i = 0; i < Lk; ++i) d += qa[i] * kj[i];
        for (int64_t i = 0; i < R; ++i) d += q[hh * Dq + Nn + i] * kj[Lk + i];
        s.push_back(d * c.attn_scale);
      }
      Vec w = softmax_sink(s, false, 0.0);
      Vec ol(Lk, 0.0);
      for (int64_t j = 0; j <= pos; ++j)
        for (int64_t i = 0; i < Lk; ++i) ol[i] += w[j] * cache.k[il][j][i];
      Vec oh = matvec(L.wv_b, ol, round, hh);
      std::copy(oh.begin(), oh.end(), att.begin() + hh * Vh);
    }
    return matvec(L.wo, att, round);
  }
  // Expand the latent into per-head keys and values.
  Vec k(H * Dq), v(H * Vh);
  for (int64_t hh = 0; hh < H; ++hh) {
    for (int64_t r = 0; r < Lk; ++r) {  // k_nope[h][j] = sum_c W_kb[h][c][j] * lat[c]
      Vec wr = weight_row(L.wk_b, hh, r);
      for (int64_t j = 0; j < Nn; ++j) k[hh * Dq + j] += wr[j] * lat[r];
    }
    for (int64_t j = 0; j < R; ++j) k[hh * Dq + Nn + j] = kpe[j];
    for (int64_t r = 0; r < Vh; ++r) {
      Vec wr = weight_row(L.wv_b, hh, r);
      double acc = 0;
      for (int64_t i = 0; i < Lk; ++i) acc += wr[i] * lat[i];
      v[hh * Vh + r] = acc;
    }
  }
  cache.k[il].push_back(k);
  cache.v[il].push_back(v);
  Vec att(H * Vh, 0.0);
  for (int64_t hh = 0; hh < H; ++hh) {
    Vec s;
    for (int64_t j = 0; j <= pos; ++j) {
      double d = 0;
      for (int64_t i = 0; i < Dq; ++i) d += q[hh * Dq + i] * cache.k[il][j][hh * Dq + i];
      s.push_back(d * c.attn_scale);
    }
    Vec w = softmax_sink(s, false, 0.0);
    for (int64_t j = 0; j <= pos; ++j)
      for (int64_t i = 0; i < Vh; ++i) att[hh * Vh + i] += w[j] * cache.v[il][j][hh * Vh + i];
  }
  return matvec(L.wo, att, round);
}

Vec expert(const Model& m, const LayerWeights& L, const Vec& x, int64_t e, bool round) {
  Vec g = matvec(L.gate_exps, x, round, e), u = matvec(L.up_exps, x, round, e);
  add(g, L.gate_exps_b, e);
  add(u, L.up_exps_b, e);
  for (size_t i = 0; i < g.size(); ++i) {
    if (m.cfg.ffn_act == FfnAct::swiglu_clamped) {  // gpt-oss: alpha 1.702, limit 7
      const double gc = std::min(g[i], 7.0), uc = std::clamp(u[i], -7.0, 7.0);
      g[i] = gc / (1.0 + std::exp(-1.702 * gc)) * (uc + 1.0);
    } else {
      g[i] = silu(g[i]) * u[i];
    }
  }
  Vec y = matvec(L.down_exps, g, round, e);
  add(y, L.down_exps_b, e);
  return y;
}

// Routing from the published formulas: scores, selection (bias, groups), weights.
Vec moe_ffn(const Model& m, int64_t il, const Vec& hf, bool round) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layers[il];
  const int64_t X = c.n_expert, K = c.n_expert_used, E = c.n_embd;
  Vec logit = matvec(L.gate_inp, hf, false);  // router sees unrounded activations
  add(logit, L.gate_inp_b);
  Vec p = logit;
  if (c.gating == Gating::softmax) p = softmax_sink(logit, false, 0.0);
  if (c.gating == Gating::sigmoid)
    for (auto& v : p) v = 1.0 / (1.0 + std::exp(-v));
  Vec sel = p;
  if (L.exp_probs_b.present())
    for (int64_t e = 0; e < X; ++e) sel[e] += L.exp_probs_b.f32()[e];
  if (c.n_group > 1) {  // keep the n_group_used groups with the best top-2 sums
    const int64_t per = X / c.n_group;
    std::vector<std::pair<double, int64_t>> gs;
    for (int64_t g = 0; g < c.n_group; ++g) {
      Vec v(sel.begin() + g * per, sel.begin() + (g + 1) * per);
      std::sort(v.rbegin(), v.rend());
      gs.push_back({-(v[0] + (per > 1 ? v[1] : 0.0)), g});
    }
    std::sort(gs.begin(), gs.end());
    if (-gs[c.n_group_used - 1].first + gs[c.n_group_used].first < 1e-6) ++g_near_ties;
    for (int64_t j = c.n_group_used; j < c.n_group; ++j)
      for (int64_t e = gs[j].second * per; e < (gs[j].second + 1) * per; ++e) sel[e] = -INFINITY;
  }
  std::vector<int64_t> order(X);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sel[a] > sel[b]; });
  if (K < X && sel[order[K - 1]] - sel[order[K]] < 1e-6) ++g_near_ties;
  Vec w(K);
  for (int64_t j = 0; j < K; ++j) w[j] = p[order[j]];
  if (c.gating == Gating::softmax_selected) w = softmax_sink(w, false, 0.0);
  double wsum = 0;
  for (double v : w) wsum += v;
  Vec out(E, 0.0);
  for (int64_t j = 0; j < K; ++j) {
    double wj = c.norm_topk ? w[j] / std::max(wsum, 6.103515625e-5) : w[j];
    wj *= c.routed_scale;
    Vec y = expert(m, L, hf, order[j], round);
    for (int64_t i = 0; i < E; ++i) out[i] += wj * y[i];
  }
  if (c.n_ff_shexp > 0) {
    Vec y = swiglu_ffn(L.gate_shexp, L.up_shexp, L.down_shexp, hf, round);
    double gate = 1.0;
    if (L.gate_inp_shexp.present()) {
      double z = 0;
      for (int64_t i = 0; i < E; ++i) z += L.gate_inp_shexp.f32()[i] * hf[i];
      gate = 1.0 / (1.0 + std::exp(-z));
    }
    for (int64_t i = 0; i < E; ++i) out[i] += gate * y[i];
  }
  return out;
}

}  // namespace

std::vector<float> forward(const Model& m, std::span<const int32_t> tokens, bool round,
                           int64_t* near_ties) {
  g_near_ties = 0;
  const ModelConfig& c = m.cfg;
  const int64_t E = c.n_embd;
  Cache cache{std::vector<std::vector<Vec>>(c.n_layer), std::vector<std::vector<Vec>>(c.n_layer)};
  std::vector<float> logits;
  for (int64_t pos = 0; pos < static_cast<int64_t>(tokens.size()); ++pos) {
    std::vector<float> emb(E);
    ops::ref::dequantize_row_ref(m.tok_embd.type, m.tok_embd.row(tokens[pos]), emb.data(), E);
    Vec x(emb.begin(), emb.end());
    for (int64_t il = 0; il < c.n_layer; ++il) {
      const LayerWeights& L = m.layers[il];
      Vec an = vec_f32(L.attn_norm);
      Vec h = rmsnorm(x, an.data(), 0, E, c.rms_eps);
      Vec o = c.attn == AttnKind::mla ? attention_mla(m, il, h, pos, cache, round)
                                      : attention_standard(m, il, h, pos, cache, round);
      for (int64_t i = 0; i < E; ++i) x[i] += o[i];
      Vec fn = vec_f32(L.ffn_norm);
      Vec hf = rmsnorm(x, fn.data(), 0, E, c.rms_eps);
      Vec f = c.layer_is_moe(il) ? moe_ffn(m, il, hf, round)
                                 : swiglu_ffn(L.ffn_gate, L.ffn_up, L.ffn_down, hf, round);
      for (int64_t i = 0; i < E; ++i) x[i] += f[i];
    }
    Vec on = vec_f32(m.output_norm);
    Vec lg = matvec(m.output, rmsnorm(x, on.data(), 0, E, c.rms_eps), round);
    logits.insert(logits.end(), lg.begin(), lg.end());
  }
  if (near_ties) *near_ties = g_near_ties;
  return logits;
}

}  // namespace moe::reference
