// rank_memory: sums, per rank, the bytes of the routed-expert slices it owns. Expert
// tensors are [.., .., n_expert] (matrix_bytes per expert); expert biases are
// [n, n_expert] (row_bytes per expert). Everything else in Model::bytes_total is
// non-expert and replicated.
#include "dist/memory.h"

#include <algorithm>

#include "base/error.h"

namespace moe::dist {

int64_t RankMemory::max_rank_bytes() const {
  int64_t worst = 0;
  for (int64_t b : rank_expert_bytes) worst = std::max(worst, b);
  return non_expert_bytes + worst;
}

RankMemory rank_memory(const Model& m, int n_ranks) {
  const int64_t n_expert = m.cfg.n_expert;
  MOE_CHECK(n_expert > 0, "--ranks: the model has no routed experts to split ({})", m.cfg.arch);
  MOE_CHECK(n_ranks >= 1 && n_ranks <= n_expert,
            "--ranks {}: must be between 1 and the number of routed experts ({})", n_ranks, n_expert);
  RankMemory r;
  r.rank_expert_bytes.assign(n_ranks, 0);
  auto add = [&](const Tensor& t, bool matrices) {
    if (!t.present()) return;
    const int64_t per_expert = static_cast<int64_t>(matrices ? t.matrix_bytes : t.row_bytes);
    for (int64_t e = 0; e < n_expert; ++e) r.rank_expert_bytes[expert_owner(e, n_expert, n_ranks)] += per_expert;
    r.expert_bytes += per_expert * n_expert;
  };
  for (const LayerWeights& L : m.layers) {
    for (const Tensor* t : {&L.gate_exps, &L.up_exps, &L.down_exps}) add(*t, true);
    for (const Tensor* t : {&L.gate_exps_b, &L.up_exps_b, &L.down_exps_b}) add(*t, false);
  }
  r.non_expert_bytes = m.bytes_total - r.expert_bytes;
  MOE_CHECK(r.non_expert_bytes >= 0, "rank_memory: expert bytes {} exceed the model's {}", r.expert_bytes,
            m.bytes_total);
  return r;
}

}  // namespace moe::dist
