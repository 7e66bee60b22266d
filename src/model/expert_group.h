// The hook through which expert parallelism enters the forward pass. A Context with an
// ExpertGroup computes only the routed experts its member owns (expert_owner), and the
// shared expert on member 0 only; ExpertGroup::sum then gives every member all expert
// output rows (each row is non-zero on its owner only, so the sum is exact) and the
// combine runs as in one process: logits equal the one-process logits bit for bit. model/ knows nothing of MPI: src/dist implements this interface.
// Invariants: every member runs the same forward pass on the same tokens (so routing is
// identical everywhere), and sum() hands every member bit-identical results (so the
// members never diverge).
#pragma once
#include <cstdint>

namespace moe {

class ExpertGroup {
 public:
  virtual ~ExpertGroup() = default;
  virtual int rank() const = 0;  // this member, in [0, size())
  virtual int size() const = 0;  // members
  // data[0, n) <- element-wise sum over all members; the same bits on every member.
  virtual void sum(float* data, int64_t n) = 0;
};

// The member that owns routed expert e of n_expert when split over n_ranks:
// contiguous shares, rank r owns experts [ceil(r * n_expert / n_ranks), ceil((r+1) * n_expert / n_ranks)).
inline int expert_owner(int64_t e, int64_t n_expert, int n_ranks) {
  return static_cast<int>(e * n_ranks / n_expert);
}
// Experts owned by rank r: [first, last).
inline int64_t experts_begin(int r, int64_t n_expert, int n_ranks) {
  return (static_cast<int64_t>(r) * n_expert + n_ranks - 1) / n_ranks;
}

}  // namespace moe
