// route, dispatch and combine (expert_matmul needs the thread pool and the kernels
// and lives in context.cpp). Formulas: softmax routing (Switch/Mixtral/Qwen3-MoE),
// top-k renormalisation w_i / max(sum w, 6.1e-5) as llama.cpp clamps it.
#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "ops/math.h"

namespace moe {

void route(const float* router_logits, int64_t n_tokens, const RouteParams& p, int32_t* experts,
           float* weights) {
  const int64_t X = p.n_expert, K = p.top_k, G = p.n_group;
  std::vector<float> score(X), sel(X);
  std::vector<int32_t> idx(X), gidx(G);
  std::vector<float> gscore(G);
  auto before = [](const std::vector<float>& v) {
    return [&v](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
  };
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* lg = router_logits + t * X;
    std::copy(lg, lg + X, score.begin());
    if (p.gating == Gating::softmax) {
      ops::softmax(score.data(), X);
    } else if (p.gating == Gating::sigmoid) {
      for (auto& s : score) s = 1.0f / (1.0f + std::exp(-s));
    }
    for (int64_t e = 0; e < X; ++e) sel[e] = score[e] + (p.selection_bias ? p.selection_bias[e] : 0.0f);
    if (G > 1) {
      const int64_t per = X / G;
      for (int64_t g = 0; g < G; ++g) {
        float b1 = -INFINITY, b2 = -INFINITY;
        for (int64_t e = g * per; e < (g + 1) * per; ++e) {
          if (sel[e] > b1) {
            b2 = b1;
            b1 = sel[e];
          } else if (sel[e] > b2) {
            b2 = sel[e];
          }
        }
        gscore[g] = b1 + (per > 1 ? b2 : 0.0f);
      }
      std::iota(gidx.begin(), gidx.end(), 0);
      std::partial_sort(gidx.begin(), gidx.begin() + p.n_group_used, gidx.end(), before(gscore));
      std::vector<bool> keep(G, false);
      for (int64_t j = 0; j < p.n_group_used; ++j) keep[gidx[j]] = true;
      for (int64_t e = 0; e < X; ++e)
        if (!keep[e / per]) sel[e] = -INFINITY;
    }
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), before(sel));
    int32_t* e = experts + t * K;
    float* w = weights + t * K;
    for (int64_t j = 0; j < K; ++j) {
      e[j] = idx[j];
      w[j] = score[idx[j]];
    }
    if (p.gating == Gating::softmax_selected) ops::softmax(w, K);
    if (p.norm_topk) {
      float sum = 0.0f;
      for (int64_t j = 0; j < K; ++j) sum += w[j];
      sum = std::max(sum, 6.103515625e-5f);
      for (int64_t j = 0; j < K; ++j) w[j] /= sum;
    }
    if (p.scale != 1.0f)
      for (int64_t j = 0; j < K; ++j) w[j] *= p.scale;
  }
}

void dispatch(const int32_t* experts, int64_t n_tokens, int64_t top_k, int64_t n_expert,
              Dispatch& d) {
  const int64_t n = n_tokens * top_k;
  d.offset.assign(n_expert + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    MOE_DASSERT(experts[i] >= 0 && experts[i] < n_expert);
    d.offset[experts[i] + 1]++;
  }
  d.active.clear();
  for (int64_t e = 0; e < n_expert; ++e) {
    if (d.offset[e + 1] > 0) d.active.push_back(static_cast<int32_t>(e));
    d.offset[e + 1] += d.offset[e];
  }
  std::vector<int64_t> fill(d.offset.begin(), d.offset.end() - 1);
  d.slot_token.resize(n);
  d.slot_of.resize(n);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t s = fill[experts[t * top_k + j]]++;
      d.slot_token[s] = static_cast<int32_t>(t);
      d.slot_of[t * top_k + j] = static_cast<int32_t>(s);
    }
  }
}

void combine_rows(const float* expert_out, const Dispatch& d, const float* weights, int64_t t0,
                  int64_t t1, int64_t top_k, int64_t n_embd, float* out) {
  for (int64_t t = t0; t < t1; ++t) {
    float* o = out + t * n_embd;
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t s = d.slot_of[t * top_k + j];
      ops::axpy(weights[t * top_k + j], expert_out + s * n_embd, o, n_embd);
    }
  }
}

void combine(const float* expert_out, const Dispatch& d, const float* weights, int64_t n_tokens,
             int64_t top_k, int64_t n_embd, float* out) {
  combine_rows(expert_out, d, weights, 0, n_tokens, top_k, n_embd, out);
}

}  // namespace moe
