// Expert parallelism inside one member of an ExpertGroup (model/expert_group.h): after
// dispatch, keep only the experts this member owns. Context::moe_ffn calls it right after
// dispatch(); expert_matmul then reads and computes only the owned experts' weights and
// leaves zero rows for the others. The group's sum of the slot rows then gives every
// member each row exactly (x + 0 == x), and the combine runs as in one process.
#include <algorithm>

#include "base/error.h"
#include "model/context.h"

namespace moe {

void Context::keep_local_experts() {
  const ModelConfig& c = model_->cfg;
  const int64_t E = c.n_embd;
  // A model packed for one rank's share holds no usable copy of the other experts.
  if (model_->expert_ranks > 1)
    MOE_CHECK(group_ && group_->rank() == model_->expert_rank && group_->size() == model_->expert_ranks,
              "this model was loaded with only the experts of rank {} of {} packed; it can run only "
              "in that rank of an expert group of that size",
              model_->expert_rank, model_->expert_ranks);
  const int rank = group_->rank(), n_ranks = group_->size();
  auto foreign = [&](int32_t e) { return expert_owner(e, c.n_expert, n_ranks) != rank; };
  for (int32_t e : disp_.active)
    if (foreign(e))
      std::fill(eo_.begin() + disp_.offset[e] * E, eo_.begin() + disp_.offset[e + 1] * E, 0.0f);
  std::erase_if(disp_.active, foreign);
}

}  // namespace moe
