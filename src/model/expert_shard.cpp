// Expert parallelism inside one member of an ExpertGroup (model/expert_group.h): after
// dispatch, keep only the experts this member owns. Context::moe_ffn calls it right after
// dispatch(); expert_matmul then reads and computes only the owned experts' weights, and
// combine sees zero rows for the others, so each member's combine is its share of the sum.
// Adding w * 0 leaves a float unchanged, so a member's partial equals the single-process
// combine restricted to its experts, in the same order.
#include <algorithm>

#include "model/context.h"

namespace moe {

void Context::keep_local_experts() {
  const ModelConfig& c = model_->cfg;
  const int64_t E = c.n_embd;
  const int rank = group_->rank(), n_ranks = group_->size();
  auto foreign = [&](int32_t e) { return expert_owner(e, c.n_expert, n_ranks) != rank; };
  for (int32_t e : disp_.active)
    if (foreign(e))
      std::fill(eo_.begin() + disp_.offset[e] * E, eo_.begin() + disp_.offset[e + 1] * E, 0.0f);
  std::erase_if(disp_.active, foreign);
}

}  // namespace moe
