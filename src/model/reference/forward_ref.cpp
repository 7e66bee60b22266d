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

// Counts values whose scaled magnitude lies within 2e-6 (relative) of a .5 rounding
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
      if (std::abs(std::abs(frac) - 0.5) < 2e-6 * d / ulp) ++g_near_ties;
    }
    for (int64_t i = 0; i < block; ++i) {
      const double v = std::abs(double(x[b0 + i]) * 127.0 / amax);
      const double frac = v - std::floor(v);
      if (std::abs(frac - 0.5) < 2e-6 * std::max(v, 1.0)) ++g_near_ties;
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
void rope(Vec& x, int64_t off, int64_t pos, int64_t n_rot, double base, bool neox) {
  const float s = std::pow(static_cast<float>(base), -2.0f / static_cast<float>(n_rot));
  float th = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i, th *= s) {
    const int64_t a = off + (neox ? i : 2 * i), b = off + (neox ? i + n_rot / 2 : 2 * i + 1);
    const double x0 = x[a], x1 = x[b], c = std::cos(double(th)), sn = std::sin(double(th));
    x[a] = x0 * c - x1 * sn;
    x[b] = x0 * sn + x1 * c;
  }
}

}  // namespace

std::vector<float> forward(const Model& m, std::span<const int32_t> tokens, bool round,
                           int64_t* near_ties) {
  g_near_ties = 0;
  const ModelConfig& c = m.cfg;
  const int64_t E = c.n_embd, H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim, Dv = c.head_dim_v;
  const int64_t n = static_cast<int64_t>(tokens.size());
  // K, V per layer per position: [n_layer][pos] -> vector
  std::vector<std::vector<Vec>> K(c.n_layer), V(c.n_layer);
  std::vector<float> logits;

  for (int64_t pos = 0; pos < n; ++pos) {
    std::vector<float> emb(E);
    ops::ref::dequantize_row_ref(m.tok_embd.type, m.tok_embd.row(tokens[pos]), emb.data(), E);
    Vec x(emb.begin(), emb.end());

    for (int64_t il = 0; il < c.n_layer; ++il) {
      const LayerWeights& L = m.layers[il];
      Vec an = vec_f32(L.attn_norm);
      Vec h = rmsnorm(x, an.data(), 0, E, c.rms_eps);
      Vec q = matvec(L.wq, h, round), k = matvec(L.wk, h, round), v = matvec(L.wv, h, round);
      if (L.bq.present()) {
        for (int64_t i = 0; i < H * D; ++i) q[i] += L.bq.f32()[i];
        for (int64_t i = 0; i < Hkv * D; ++i) k[i] += L.bk.f32()[i];
        for (int64_t i = 0; i < Hkv * Dv; ++i) v[i] += L.bv.f32()[i];
      }
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
      const bool neox = c.rope_type == RopeType::neox;
      for (int64_t hh = 0; hh < H; ++hh) rope(q, hh * D, pos, c.n_rot, c.rope_base, neox);
      for (int64_t hh = 0; hh < Hkv; ++hh) rope(k, hh * D, pos, c.n_rot, c.rope_base, neox);
      K[il].push_back(k);
      V[il].push_back(v);

      // Causal attention; kv head j serves q heads j*g .. j*g+g-1.
      Vec att(H * Dv, 0.0);
      const int64_t g = H / Hkv;
      for (int64_t hh = 0; hh < H; ++hh) {
        const int64_t kvh = hh / g;
        Vec s(pos + 1);
        for (int64_t j = 0; j <= pos; ++j) {
          double d = 0;
          for (int64_t i = 0; i < D; ++i) d += q[hh * D + i] * K[il][j][kvh * D + i];
          s[j] = d / std::sqrt(static_cast<double>(D));
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= pos; ++j)
          for (int64_t i = 0; i < Dv; ++i) att[hh * Dv + i] += s[j] / sum * V[il][j][kvh * Dv + i];
      }
      Vec o = matvec(L.wo, att, round);
      for (int64_t i = 0; i < E; ++i) x[i] += o[i];

      // FFN
      Vec fn = vec_f32(L.ffn_norm);
      Vec hf = rmsnorm(x, fn.data(), 0, E, c.rms_eps);
      Vec out(E, 0.0);
      if (!c.is_moe()) {
        out = swiglu_ffn(L.ffn_gate, L.ffn_up, L.ffn_down, hf, round);
      } else {
        Vec logit_r = matvec(L.gate_inp, hf, false);  // router sees unrounded activations
        Vec p = logit_r;
        if (c.gating == Gating::softmax) {
          const double mx = *std::max_element(p.begin(), p.end());
          double sum = 0;
          for (auto& e : p) sum += (e = std::exp(e - mx));
          for (auto& e : p) e /= sum;
        }
        std::vector<int64_t> order(c.n_expert);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
        if (c.n_expert_used < c.n_expert &&
            p[order[c.n_expert_used - 1]] - p[order[c.n_expert_used]] < 1e-6)
          ++g_near_ties;
        double wsum = 0;
        for (int64_t j = 0; j < c.n_expert_used; ++j) wsum += p[order[j]];
        for (int64_t j = 0; j < c.n_expert_used; ++j) {
          const int64_t e = order[j];
          double w = p[e];
          if (c.norm_topk) w /= std::max(wsum, 6.103515625e-5);
          w *= c.routed_scale;
          Vec y = swiglu_ffn(L.gate_exps, L.up_exps, L.down_exps, hf, round, e);
          for (int64_t i = 0; i < E; ++i) out[i] += w * y[i];
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
      }
      for (int64_t i = 0; i < E; ++i) x[i] += out[i];
    }
    Vec on = vec_f32(m.output_norm);
    Vec xf = rmsnorm(x, on.data(), 0, E, c.rms_eps);
    Vec lg = matvec(m.output, xf, round);
    logits.insert(logits.end(), lg.begin(), lg.end());
  }
  if (near_ties) *near_ties = g_near_ties;
  return logits;
}

}  // namespace moe::reference
