// The continuous-batching scheduler: one thread owns the Context and its n_seq
// slots. HTTP handlers submit Jobs through a queue; every step the scheduler admits
// queued jobs into free slots (FIFO), then runs ONE decode over a batch holding the
// next token of every generating slot plus prompt chunks of the slots still reading
// their prompts, samples each slot and publishes text pieces to the job's channel.
// A free slot whose cached tokens share the longest prefix with a new prompt is
// chosen and its KV cache is kept for that prefix. The queue of waiting jobs is
// bounded (submit() answers queue_full), and a failure fails only its own job: a
// batch whose decode throws is re-run slot by slot, so only the slot(s) that still
// fail alone end with an error.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/context.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace moe::server {

struct GenParams {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplerParams sampler;
  std::vector<std::string> stop;
  int top_logprobs = -1;  // < 0: no logprobs; 0..20: logprobs with that many alternatives
  bool ignore_eos = false;
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit before sampling)
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

// Text released by one step (may be empty while a stop string or UTF-8 is pending).
struct Piece {
  std::string text;
  std::vector<TokenLogprob> logprobs;
};

// The channel between the scheduler (producer) and an HTTP handler (consumer).
struct Job {
  GenParams params;
  std::atomic<bool> cancelled{false};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Piece> pieces;
  bool done = false;
  std::string finish_reason;  // stop | length | error | cancelled
  std::string error;          // set when finish_reason == "error"
  int64_t n_prompt = 0, n_generated = 0, n_cached = 0;

  // Waits up to `timeout` for pieces or the end; moves the pieces out.
  // Returns true when the job is done (all of its pieces were taken).
  bool take(std::vector<Piece>& out, std::chrono::milliseconds timeout);
};

struct SchedulerStats {
  int64_t queue_depth = 0, slots_busy = 0, slots_total = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0, cached_tokens = 0, steps = 0;
  int64_t jobs_done = 0, jobs_cancelled = 0;
  double busy_seconds = 0;       // time spent in decode + sampling
  double recent_tok_per_s = 0;   // generated tokens per second over the last few seconds
  std::vector<std::vector<int64_t>> expert_load;  // [n_layer][n_expert]
};

enum class Submit { ok, queue_full, draining };

class Scheduler {
 public:
  // max_queue: jobs that may wait for a slot (0: unbounded).
  Scheduler(std::shared_ptr<const Model> model, const Tokenizer& tok, const ContextOptions& opts,
            size_t max_queue = 0);
  ~Scheduler();

  // Queues a job. queue_full when max_queue jobs already wait, draining after drain().
  // A job the engine cannot run (empty prompt, max_tokens < 1, ids out of range, longer
  // than the context) is accepted and ends with finish_reason "error", alone.
  Submit submit(const std::shared_ptr<Job>& job);
  // Stops admitting; lets running and queued jobs finish until `deadline`, then
  // cancels the rest. Returns when the scheduler thread has ended.
  void drain(std::chrono::steady_clock::time_point deadline);
  SchedulerStats stats() const;
  int64_t n_ctx() const { return n_ctx_; }

 private:
  struct Slot;
  void loop();
  void admit();
  bool step();  // false when idle
  void finish(Slot& s, const std::string& reason, const std::string& error = {});
  void emit(Slot& s, Piece&& p);
  void on_logits(Slot& s, const float* logits);
  void on_logits_guarded(Slot& s, const float* logits);  // a throw ends this slot's job only
  void decode_each(const std::vector<BatchToken>& batch);  // after a failed batch: slot by slot

  std::shared_ptr<const Model> model_;
  const Tokenizer& tok_;
  Context ctx_;
  int64_t n_ctx_, n_batch_;
  size_t max_queue_;
  std::vector<float> biased_;  // [n_vocab] logits + logit_bias of the slot being sampled
  std::vector<Slot> slots_;
  size_t rr_ = 0;  // round-robin start for prompt chunks
  uint64_t use_clock_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool draining_ = false, stop_ = false;
  std::chrono::steady_clock::time_point deadline_;
  SchedulerStats stats_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> recent_;
  std::chrono::steady_clock::time_point last_load_copy_{};

  std::thread thread_;
};

}  // namespace moe::server
