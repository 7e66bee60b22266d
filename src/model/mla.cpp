// Multi-head Latent Attention (DeepSeek-V2/V3, Kimi K2) in the absorbed form:
// the cache holds per token only the normalised latent c [kv_lora] and the shared
// rotary key k_pe [rope]. Per head h:
//   q_abs = W_kb[h] . q_nope            [kv_lora]   (k_nope . q_nope = c . q_abs)
//   score_j = (q_abs . c_j + q_pe . k_pe_j) * attn_scale   over the sequence's keys
//   o_lat = sum_j softmax_j c_j         [kv_lora]
//   out_h = W_vb[h] . o_lat             [v_head]
// then attn_output over the concatenated heads. The naive (expanded) form is in
// model/reference/forward_ref.cpp; tests check that the two agree.
#include <algorithm>
#include <cmath>

#include "model/context.h"
#include "ops/math.h"

namespace moe {

void Context::mla_attention(int il, std::span<const BatchToken> batch, const float* xn, float* out) {
  const ModelConfig& c = model_->cfg;
  const LayerWeights& L = model_->layers[il];
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = c.n_head, R = c.n_rot, Nn = c.qk_nope, Dq = Nn + R, Lk = c.kv_lora_rank;
  const int64_t Vh = c.v_head, Kd = Lk + R;
  float* q = q_.data();         // [T, H * (nope + rope)]
  float* kv = k_.data();        // [T, kv_lora + rope]
  float* tmp = tmp_.data();     // scratch: q_a [T, q_lora] / per-head inputs [T, max(nope, kv_lora)]
  float* q_abs = mla_q_.data();  // [T, H, kv_lora]
  float* o_lat = mla_o_.data();  // [T, H, kv_lora]

  // q (optionally through the low-rank q_a with its norm), and the compressed kv.
  if (c.q_lora_rank > 0) {
    linear(L.wq_a, xn, T, tmp);
    for (int64_t t = 0; t < T; ++t)
      ops::rms_norm(tmp + t * c.q_lora_rank, L.q_a_norm.f32(), tmp + t * c.q_lora_rank, c.q_lora_rank, c.rms_eps);
    linear(L.wq_b, tmp, T, q);
  } else {
    linear(L.wq, xn, T, q);
  }
  linear(L.wkv_a, xn, T, kv);
  const bool neox = c.rope_type == RopeType::neox;
  for (int64_t t = 0; t < T; ++t) {
    float* kvt = kv + t * Kd;
    ops::rms_norm(kvt, L.kv_a_norm.f32(), kvt, Lk, c.rms_eps);
    const float* cs = rope_cs_.data() + t * R;
    ops::rope_apply(kvt + Lk, cs, R, neox);
    for (int64_t h = 0; h < H; ++h) ops::rope_apply(q + t * H * Dq + h * Dq + Nn, cs, R, neox);
    kv_store(true, il, batch[t].seq, batch[t].pos, kvt);
  }

  // Absorb W_kb into the queries, one head at a time: [T, nope] -> [T, kv_lora].
  float* qh = tmp;
  float* yh = tmp + T * std::max(Nn, Lk);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t t = 0; t < T; ++t) std::copy_n(q + t * H * Dq + h * Dq, Nn, qh + t * Nn);
    linear(L.wk_b, qh, T, yh, h);
    for (int64_t t = 0; t < T; ++t) std::copy_n(yh + t * Lk, Lk, q_abs + (t * H + h) * Lk);
  }

  // Attention over the latent cache; work items (token, head).
  pool_.parallel_for(T * H, [&](int64_t item, int thread) {
    const int64_t t = item / H, h = item % H;
    const int64_t n_keys = batch[t].pos + 1;
    const KvView kc = kv_view(true, il, batch[t].seq);
    float* s = scores_.data() + static_cast<size_t>(thread) * opts_.n_ctx;
    const float* qa = q_abs + (t * H + h) * Lk;
    const float* qp = q + t * H * Dq + h * Dq + Nn;
    for (int64_t j = 0; j < n_keys; ++j)
      s[j] = (kc.dot(qa, j, 0, Lk) + kc.dot(qp, j, Lk, R)) * c.attn_scale;
    ops::softmax(s, n_keys);
    float* o = o_lat + (t * H + h) * Lk;
    std::fill(o, o + Lk, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) kc.axpy(s[j], j, 0, Lk, o);
  });

  // Expand the latent outputs through W_vb per head, concatenate, project.
  float* heads = attn_.data();  // [T, H * v_head]
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t t = 0; t < T; ++t) std::copy_n(o_lat + (t * H + h) * Lk, Lk, qh + t * Lk);
    linear(L.wv_b, qh, T, yh, h);
    for (int64_t t = 0; t < T; ++t) std::copy_n(yh + t * Vh, Vh, heads + t * H * Vh + h * Vh);
  }
  linear(L.wo, heads, T, out);
}

}  // namespace moe
