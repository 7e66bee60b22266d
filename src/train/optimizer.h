// AdamW with decoupled weight decay (Loshchilov & Hutter), linear warm-up then
// cosine decay to min_lr_ratio * lr, global-norm gradient clipping. The state is
// two f32 vectors the size of the parameters. set_ftz_daz() sets the MXCSR
// flush-to-zero / denormals-are-zero bits: idle experts' moments decay into
// denormals, which would otherwise slow the update (and the next steps) ~10x.
#pragma once
#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "train/params.h"

namespace moe::train {

struct OptimOptions {
  float lr = 3e-3f;
  float min_lr_ratio = 0.1f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
  float clip = 1.0f;        // max global gradient norm; <= 0: no clipping
  int64_t warmup = 50;
  int64_t total_steps = 1000;
};

float lr_at(const OptimOptions& o, int64_t step);

void set_ftz_daz();

class AdamW {
 public:
  explicit AdamW(size_t n) : m(n, 0.0f), v(n, 0.0f) {}
  // One update at step `step` (0-based) with learning rate lr; clips g first.
  // Returns the gradient norm before clipping. Deterministic: chunk sums in order.
  double step(const ParamLayout& l, std::vector<float>& w, std::vector<float>& g, float lr,
              const OptimOptions& o, ThreadPool* pool);
  std::vector<float> m, v;
  int64_t t = 0;  // updates done
};

}  // namespace moe::train
