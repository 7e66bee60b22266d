// Wall-clock stage breakdown of a training step, for finding where the time goes.
// Off unless enabled (MOE_TRAIN_PROFILE=1 in `moe train`, or train_step_bench
// --profile): a disabled Stage costs one branch. Stages are timed on the calling
// thread only (they wrap whole parallel regions), so they sum to the step time.
#pragma once
#include <time.h>

#include <chrono>
#include <cstdint>

namespace moe::train::prof {

enum Id : int {
  embed, attn_norm, qkv_proj, qk_norm_rope, attn_core, attn_out, ffn_norm, router, dispatch,
  experts, combine, shared_exp, final_norm, lm_head, softmax_ce,
  b_ce, b_lm_head, b_final_norm, b_combine, b_experts, b_router, b_ffn_norm, b_attn_out,
  b_attn_core, b_qk_norm_rope, b_qkv_proj, b_attn_norm, b_embed, b_shared_exp,
  zero_grad, optimizer, data, bookkeeping, n_stages
};

inline const char* name(int i) {
  static const char* const names[] = {
      "embed", "attn_norm", "qkv_proj", "qk_norm_rope", "attn_core", "attn_out", "ffn_norm", "router",
      "dispatch", "experts", "combine", "shared_exp", "final_norm", "lm_head", "softmax_ce",
      "b_ce", "b_lm_head", "b_final_norm", "b_combine", "b_experts", "b_router", "b_ffn_norm",
      "b_attn_out", "b_attn_core", "b_qk_norm_rope", "b_qkv_proj", "b_attn_norm", "b_embed",
      "b_shared_exp", "zero_grad", "optimizer", "data", "bookkeeping"};
  return names[i];
}

struct Table {
  bool on = false;
  bool cpu = false;  // thread CPU time of the calling thread instead of wall time (1 thread)
  double sec[n_stages] = {};
  int64_t calls[n_stages] = {};
};
inline Table& table() {
  static Table t;
  return t;
}

inline double now(bool cpu) {
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Stage {
 public:
  explicit Stage(Id id) : id_(id), on_(table().on) {
    if (on_) t0_ = now(table().cpu);
  }
  ~Stage() { stop(); }
  void stop() {
    if (!on_) return;
    on_ = false;
    table().sec[id_] += now(table().cpu) - t0_;
    table().calls[id_]++;
  }
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

 private:
  Id id_;
  bool on_;
  double t0_ = 0;
};

}  // namespace moe::train::prof
