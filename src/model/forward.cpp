// The forward pass of every supported architecture, top to bottom. Differences
// between llama / qwen3 / qwen3moe / olmoe / qwen2moe / gpt-oss / deepseek2 are
// flags in ModelConfig (q/k/o bias, q/k norm per head or full width, rope pairing
// and YaRN, sliding window and sinks, dense or MoE FFN, shared expert and its gate);
// DeepSeek's latent attention is its own block (model/mla.cpp). See
// docs/ARCHITECTURE.md.
//
//   x = token_embd[tokens]                                  [T, n_embd]
//   per layer:  x += attn(rms_norm(x) * attn_norm)
//               x += ffn(rms_norm(x) * ffn_norm)            (dense SwiGLU or MoE)
//   logits = output . (rms_norm(x) * output_norm)           [wanted rows, n_vocab]
#include <algorithm>

#include "model/context.h"
#include "base/timer.h"
#include "ops/math.h"
#include "ops/quant.h"

namespace moe {

void Context::forward(std::span<const BatchToken> batch, float* logits) {
  auto slot = [&](double& d) { return profile_ ? &d : nullptr; };
  StageTimer total(slot(times_.total));
  const Model& m = *model_;
  const ModelConfig& c = m.cfg;
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t E = c.n_embd, R = c.n_rot;
  float* x = x_.data();    // [T, n_embd] residual stream
  float* xn = xn_.data();  // [T, n_embd] normed input of a block

  const ops::YarnParams yarn{.freq_scale = c.rope_freq_scale, .n_ctx_orig = c.rope_n_ctx_orig,
                            .beta_fast = c.yarn_beta_fast, .beta_slow = c.yarn_beta_slow,
                            .mscale = c.rope_mscale};
  each_token(T, [&](int64_t t) {
    ops::dequantize_row(m.tok_embd.type, m.tok_embd.row(batch[t].token), x + t * E, E);
    if (c.yarn) {
      ops::rope_cache_yarn(rope_cs_.data() + t * R, batch[t].pos, R, c.rope_base, yarn);
    } else {
      ops::rope_cache(rope_cs_.data() + t * R, batch[t].pos, R, c.rope_base);
    }
  });
  // dst rows = rms_norm(src rows) * weight
  auto norm_rows = [&](const float* src, const Tensor& w, float* dst) {
    each_token(T, [&](int64_t t) { ops::rms_norm(src + t * E, w.f32(), dst + t * E, E, c.rms_eps); });
  };

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = m.layers[il];

    // ---- attention block ----
    norm_rows(x, L.attn_norm, xn);
    {
      StageTimer t(slot(times_.attention));
      if (c.attn == AttnKind::mla) {
        mla_attention(il, batch, xn, tmp_.data());
      } else {
        standard_attention(il, batch, xn, tmp_.data());
      }
    }
    each_token(T, [&](int64_t t) {
      if (L.bo.present()) ops::axpy(1.0f, L.bo.f32(), tmp_.data() + t * E, E);
      ops::axpy(1.0f, tmp_.data() + t * E, x + t * E, E);
    });

    // ---- feed-forward block ----
    norm_rows(x, L.ffn_norm, xn);
    float* f = ffn_out_.data();
    if (c.layer_is_moe(il)) {
      moe_ffn(il, xn, T, f);
    } else {
      StageTimer t(slot(times_.dense_ffn));
      dense_ffn(L.ffn_gate, L.ffn_up, L.ffn_down, xn, T, c.n_ff, f);
    }
    each_token(T, [&](int64_t t) { ops::axpy(1.0f, f + t * E, x + t * E, E); });
  }

  // Final norm and lm_head over the rows whose logits are wanted.
  int64_t n_out = 0;
  for (int64_t t = 0; t < T; ++t)
    if (batch[t].logits) ops::rms_norm(x + t * E, m.output_norm.f32(), xn + n_out++ * E, E, c.rms_eps);
  StageTimer t(slot(times_.lm_head));
  if (n_out > 0) linear(m.output, xn, n_out, logits);
}

// Standard multi-head attention with grouped K/V heads: projections (+bias),
// q/k RMSNorm, RoPE, append to the cache, attention, output projection.
// xn [T, n_embd] -> out [T, n_embd].
void Context::standard_attention(int il, std::span<const BatchToken> batch, const float* xn, float* out) {
  const ModelConfig& c = model_->cfg;
  const LayerWeights& L = model_->layers[il];
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim, Dv = c.head_dim_v, R = c.n_rot;
  const int64_t qd = H * D, kd = Hkv * D, vd = Hkv * Dv;
  float* q = q_.data();    // [T, n_head * head_dim]
  float* k = k_.data();    // [T, n_head_kv * head_dim]
  float* v = v_.data();    // [T, n_head_kv * head_dim_v]
  const Tensor* qkv[3] = {&L.wq, &L.wk, &L.wv};
  float* qkv_out[3] = {q, k, v};
  linear_multi(qkv, xn, T, qkv_out);
  // Per token: biases, q/k norms, RoPE, and the append to the sequence's KV cache
  // at its position (distinct rows for distinct tokens).
  each_token(T, [&](int64_t t) {
    if (c.qkv_bias) {
      ops::axpy(1.0f, L.bq.f32(), q + t * qd, qd);
      ops::axpy(1.0f, L.bk.f32(), k + t * kd, kd);
      ops::axpy(1.0f, L.bv.f32(), v + t * vd, vd);
    }
    float* qt = q + t * qd;
    float* kt = k + t * kd;
    if (c.qk_norm == QkNorm::per_head) {
      for (int64_t h = 0; h < H; ++h) ops::rms_norm(qt + h * D, L.q_norm.f32(), qt + h * D, D, c.rms_eps);
      for (int64_t h = 0; h < Hkv; ++h) ops::rms_norm(kt + h * D, L.k_norm.f32(), kt + h * D, D, c.rms_eps);
    } else if (c.qk_norm == QkNorm::full) {
      ops::rms_norm(qt, L.q_norm.f32(), qt, qd, c.rms_eps);
      ops::rms_norm(kt, L.k_norm.f32(), kt, kd, c.rms_eps);
    }
    const float* cs = rope_cs_.data() + t * R;
    const bool neox = c.rope_type == RopeType::neox;
    for (int64_t h = 0; h < H; ++h) ops::rope_apply(qt + h * D, cs, R, neox);
    for (int64_t h = 0; h < Hkv; ++h) ops::rope_apply(kt + h * D, cs, R, neox);
    kv_store(true, il, batch[t].seq, batch[t].pos, kt);
    kv_store(false, il, batch[t].seq, batch[t].pos, v + t * vd);
  });
  attention(il, batch, q, attn_.data());
  linear(L.wo, attn_.data(), T, out);
}

}  // namespace moe
