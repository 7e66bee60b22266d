// Attention core: causal softmax attention of a batch's queries over each
// sequence's KV cache (standard / GQA attention; MLA is in mla.cpp).
#include <algorithm>
#include <cmath>

#include "model/context.h"

namespace moe {

// Causal softmax attention of the batch's queries, each over its own sequence's
// cache (positions 0..pos, or the last n_swa of them on sliding-window layers).
// With sinks (gpt-oss) each head's softmax denominator also holds exp(sink[h]).
// q [T, n_head*head_dim] (rotated), out [T, n_head*head_dim_v]. Work items: (token, head).
void Context::attention(int il, std::span<const BatchToken> batch, const float* q, float* out) {
  const ModelConfig& c = model_->cfg;
  const LayerWeights& L = model_->layers[il];
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = c.n_head, D = c.head_dim, Dv = c.head_dim_v, g = c.n_head / c.n_head_kv;
  const bool swa = c.layer_is_swa(il);
  pool_.parallel_for(T * H, [&](int64_t item, int thread) {
    const int64_t t = item / H, h = item % H, hk = h / g;
    const int64_t j1 = batch[t].pos + 1;
    const int64_t j0 = swa ? std::max<int64_t>(0, j1 - c.n_swa) : 0;
    const KvView kc = kv_view(true, il, batch[t].seq);
    const KvView vc = kv_view(false, il, batch[t].seq);
    float* s = scores_.data() + static_cast<size_t>(thread) * opts_.n_ctx;
    const float* qh = q + t * H * D + h * D;
    float mx = L.sinks.present() ? L.sinks.f32()[h] : -INFINITY;
    for (int64_t j = j0; j < j1; ++j) {
      s[j] = kc.dot(qh, j, hk * D, D) * c.attn_scale;
      mx = std::max(mx, s[j]);
    }
    double sum = L.sinks.present() ? std::exp(L.sinks.f32()[h] - mx) : 0.0;
    for (int64_t j = j0; j < j1; ++j) sum += (s[j] = std::exp(s[j] - mx));
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + t * H * Dv + h * Dv;
    std::fill(o, o + Dv, 0.0f);
    for (int64_t j = j0; j < j1; ++j) vc.axpy(s[j] * inv, j, hk * Dv, Dv, o);
  });
}

}  // namespace moe
