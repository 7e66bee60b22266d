// Weight memory per rank under expert parallelism, for `moe inspect --ranks N`: the
// non-expert weights are replicated on every rank, the routed experts of each MoE
// layer are split into contiguous shares (model/expert_group.h: expert_owner). No MPI.
#pragma once
#include <cstdint>
#include <vector>

#include "model/expert_group.h"
#include "model/model.h"

namespace moe::dist {

struct RankMemory {
  int64_t non_expert_bytes = 0;           // replicated on every rank
  int64_t expert_bytes = 0;               // all routed experts of all layers
  std::vector<int64_t> rank_expert_bytes; // [n_ranks] routed-expert bytes each rank owns
  int64_t max_rank_bytes() const;         // non-expert + the largest rank's experts
};

// Throws moe::Error unless 1 <= n_ranks <= n_expert (a rank without experts does nothing).
RankMemory rank_memory(const Model& m, int n_ranks);

}  // namespace moe::dist
