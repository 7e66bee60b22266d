// The MoE feed-forward block as four named stages:
//   route          router logits -> scores -> top-k experts and their weights per token
//   dispatch       token rows grouped by expert (contiguous segments, active experts only)
//   expert_matmul  gate/up -> SwiGLU -> down over each active expert's segment
//   combine        weighted scatter-add of expert outputs back to token rows
// Only the experts that appear in the routing are read: the other experts' weights
// are never touched (tests fill them with NaN to prove it).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"

namespace moe {

struct RouteParams {
  int64_t n_expert = 0;
  int64_t top_k = 0;
  Gating gating = Gating::softmax;
  bool norm_topk = false;
  float scale = 1.0f;
  const float* selection_bias = nullptr;  // [n_expert] added to scores for selection only
  int64_t n_group = 1, n_group_used = 1;  // group-limited top-k
};

// route: router_logits [n_tokens, n_expert] -> experts [n_tokens, top_k], weights [n_tokens, top_k].
// Experts of a token are ordered by descending selection score (ties: lower index
// first). Scores: softmax(logits), sigmoid(logits) or the logits themselves
// (softmax_selected); selection adds selection_bias; with groups, only experts of the
// n_group_used groups with the best sum-of-top-2 selection scores are eligible.
// Weights: the unbiased scores of the chosen experts (softmax over the chosen logits
// for softmax_selected), renormalised if norm_topk, times scale.
void route(const float* router_logits, int64_t n_tokens, const RouteParams& p,
           int32_t* experts, float* weights);

// dispatch: the routing as expert-contiguous segments.
struct Dispatch {
  std::vector<int32_t> active;      // experts with at least one token, ascending
  std::vector<int64_t> offset;      // [n_expert + 1] segment start of each expert in slot order
  std::vector<int32_t> slot_token;  // [n_slots] token row of each slot
  std::vector<int32_t> slot_of;     // [n_tokens * top_k] slot of (token, j)
  int64_t n_slots() const { return static_cast<int64_t>(slot_token.size()); }
};
void dispatch(const int32_t* experts, int64_t n_tokens, int64_t top_k, int64_t n_expert,
              Dispatch& d);

// combine: out[t] += sum_j weights[t, j] * expert_out[slot_of(t, j)]   (rows of n_embd)
void combine(const float* expert_out, const Dispatch& d, const float* weights, int64_t n_tokens,
             int64_t top_k, int64_t n_embd, float* out);
// combine for tokens [t0, t1) only (the rows of out those tokens own).
void combine_rows(const float* expert_out, const Dispatch& d, const float* weights, int64_t t0,
                  int64_t t1, int64_t top_k, int64_t n_embd, float* out);

}  // namespace moe
