// Continuous batching: the scheduler thread admits jobs into slots, builds one
// mixed batch per step (one token per generating slot, then prompt chunks round-
// robin within the n_batch budget), decodes it in ONE forward pass and samples.
#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "base/log.h"
#include "server/text.h"

namespace moe::server {

using Clock = std::chrono::steady_clock;

bool Job::take(std::vector<Piece>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu);
  cv.wait_for(lk, timeout, [&] { return !pieces.empty() || done; });
  for (auto& p : pieces) out.push_back(std::move(p));
  pieces.clear();
  return done;
}

struct Scheduler::Slot {
  int seq = 0;
  std::shared_ptr<Job> job;
  std::vector<int32_t> cached;  // tokens whose K/V are in the cache of this sequence
  size_t n_fed = 0;             // prompt tokens in the cache
  bool generating = false;
  int32_t last = -1;            // sampled token to feed next
  uint64_t last_use = 0;
  std::vector<int32_t> history;
  std::optional<Sampler> sampler;
  std::optional<StreamDecoder> dec;
  Utf8Stream utf8;
  std::optional<StopMatcher> stop;
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, const Tokenizer& tok, const ContextOptions& opts,
                     size_t max_queue)
    : model_(std::move(model)),
      tok_(tok),
      ctx_(model_, opts),
      n_ctx_(opts.n_ctx),
      n_batch_(opts.n_batch),
      max_queue_(max_queue) {
  slots_.resize(static_cast<size_t>(opts.n_seq));
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].seq = static_cast<int>(i);
  stats_.slots_total = opts.n_seq;
  stats_.expert_load = ctx_.expert_load();
  MOE_LOG_INFO("serve: KV cache {} for {} slots x {} tokens: {:.1f} MiB", opts.kv_f16 ? "f16" : "f32", opts.n_seq,
               opts.n_ctx, static_cast<double>(ctx_.kv_cache_bytes()) / (1 << 20));
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = draining_ = true;
    deadline_ = Clock::now();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Submit Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (draining_) return Submit::draining;
    if (max_queue_ > 0 && queue_.size() >= max_queue_) return Submit::queue_full;
    // A slot with no prompt token would own a logits row it never asked for: refuse
    // such a job here (the API never sends one; this guards direct callers).
    if (job->params.prompt.empty() || job->params.max_tokens < 1) {
      std::lock_guard<std::mutex> jl(job->mu);
      job->done = true;
      job->finish_reason = "error";
      job->error = job->params.prompt.empty() ? "empty prompt" : "max_tokens must be at least 1";
      job->cv.notify_all();
      return Submit::ok;
    }
    queue_.push_back(job);
    stats_.queue_depth = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return Submit::ok;
}

void Scheduler::drain(Clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    draining_ = true;
    deadline_ = deadline;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  SchedulerStats s = stats_;
  const auto now = Clock::now();
  int64_t n = 0;
  for (const auto& [t, k] : recent_)
    if (now - t < std::chrono::seconds(5)) n += k;
  s.recent_tok_per_s = n / 5.0;
  return s;
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error) {
  auto job = std::move(s.job);
  s.job.reset();
  s.generating = false;
  s.sampler.reset();
  s.dec.reset();
  s.stop.reset();
  s.utf8 = Utf8Stream();
  s.history.clear();
  if (reason == "error") {
    ctx_.truncate(s.seq, 0);
    s.cached.clear();
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.jobs_done++;
    if (reason == "cancelled") stats_.jobs_cancelled++;
    stats_.slots_busy = std::count_if(slots_.begin(), slots_.end(), [](const Slot& x) { return x.job != nullptr; });
  }
  std::lock_guard<std::mutex> lk(job->mu);
  job->done = true;
  job->finish_reason = reason;
  job->error = error;
  job->cv.notify_all();
}

void Scheduler::emit(Slot& s, Piece&& p) {
  if (p.text.empty() && p.logprobs.empty()) return;
  std::lock_guard<std::mutex> lk(s.job->mu);
  s.job->pieces.push_back(std::move(p));
  s.job->cv.notify_all();
}

void Scheduler::admit() {
  std::lock_guard<std::mutex> lk(mu_);
  while (!queue_.empty()) {
    auto job = queue_.front();
    if (job->cancelled) {
      queue_.pop_front();
      std::lock_guard<std::mutex> jl(job->mu);
      job->done = true;
      job->finish_reason = "cancelled";
      job->cv.notify_all();
      stats_.jobs_done++;
      stats_.jobs_cancelled++;
      continue;
    }
    // The free slot with the longest cached prefix of this prompt (then least recently used).
    const auto& prompt = job->params.prompt;
    Slot* best = nullptr;
    size_t best_lcp = 0;
    for (auto& s : slots_) {
      if (s.job) continue;
      const size_t n = std::min(s.cached.size(), prompt.size());
      const size_t lcp = std::mismatch(prompt.begin(), prompt.begin() + n, s.cached.begin()).first - prompt.begin();
      if (!best || lcp > best_lcp || (lcp == best_lcp && s.last_use < best->last_use)) {
        best = &s;
        best_lcp = lcp;
      }
    }
    if (!best) break;
    queue_.pop_front();
    Slot& s = *best;
    const size_t keep = std::min(best_lcp, prompt.size() - 1);
    ctx_.truncate(s.seq, static_cast<int64_t>(keep));
    s.cached.resize(keep);
    s.n_fed = keep;
    s.job = job;
    s.generating = false;
    s.last_use = ++use_clock_;
    s.history = prompt;
    s.sampler.emplace(job->params.sampler);
    s.dec.emplace(tok_);
    s.utf8 = Utf8Stream();
    s.stop.emplace(job->params.stop);
    job->n_prompt = static_cast<int64_t>(prompt.size());
    job->n_cached = static_cast<int64_t>(keep);
    stats_.prompt_tokens += static_cast<int64_t>(prompt.size());
    stats_.cached_tokens += static_cast<int64_t>(keep);
  }
  stats_.queue_depth = static_cast<int64_t>(queue_.size());
  stats_.slots_busy = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; });
}

static TokenLogprob logprob_of(const float* L, int64_t n_vocab, int32_t id, int top) {
  const float mx = *std::max_element(L, L + n_vocab);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(L[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  TokenLogprob r{id, L[id] - lse, {}};
  if (top > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
    std::iota(idx.begin(), idx.end(), 0);
    const auto k = std::min<int64_t>(top, n_vocab);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return L[a] > L[b] || (L[a] == L[b] && a < b); });
    for (int64_t i = 0; i < k; ++i) r.top.emplace_back(idx[i], L[idx[i]] - lse);
  }
  return r;
}

void Scheduler::on_logits(Slot& s, const float* L) {
  const int64_t n_vocab = model_->cfg.n_vocab;
  Job& job = *s.job;
  if (!job.params.logit_bias.empty()) {
    biased_.assign(L, L + n_vocab);
    for (const auto& [tid, b] : job.params.logit_bias)
      if (tid >= 0 && tid < n_vocab) biased_[static_cast<size_t>(tid)] += b;
    L = biased_.data();
  }
  const int32_t id = s.sampler->sample(std::span<const float>(L, static_cast<size_t>(n_vocab)), s.history);
  Piece p;
  if (job.params.top_logprobs >= 0) p.logprobs.push_back(logprob_of(L, n_vocab, id, job.params.top_logprobs));
  s.history.push_back(id);
  job.n_generated++;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.generated_tokens++;
  }
  const bool eog = !job.params.ignore_eos && tok_.is_eog(id);
  const bool at_limit = job.n_generated >= job.params.max_tokens;
  if (!eog) p.text = s.stop->push(s.utf8.push(s.dec->push(id)));
  if (s.stop->stopped()) {
    emit(s, std::move(p));
    finish(s, "stop");
    return;
  }
  if (eog || at_limit) {
    p.text += s.stop->push(s.utf8.push(s.dec->flush()) + s.utf8.flush());
    if (!s.stop->stopped()) p.text += s.stop->flush();
    emit(s, std::move(p));
    finish(s, eog || s.stop->stopped() ? "stop" : "length");
    return;
  }
  emit(s, std::move(p));
  s.generating = true;
  s.last = id;
}

void Scheduler::on_logits_guarded(Slot& s, const float* L) {
  try {
    on_logits(s, L);
  } catch (const std::exception& e) {
    MOE_LOG_WARN("serve: sampling failed for slot {}: {}", s.seq, e.what());
    if (s.job) finish(s, "error", e.what());
  }
}

void Scheduler::decode_each(const std::vector<BatchToken>& batch) {
  // Context::decode validates before it writes, but runs long batches in n_batch parts:
  // roll every slot of the batch back to what it had cached (cached.size() == n_past).
  std::vector<int> seqs;
  for (const auto& b : batch)
    if (std::find(seqs.begin(), seqs.end(), b.seq) == seqs.end()) seqs.push_back(b.seq);
  for (int q : seqs) ctx_.truncate(q, static_cast<int64_t>(slots_[static_cast<size_t>(q)].cached.size()));
  std::vector<BatchToken> sub;
  std::vector<float> logits;
  for (int q : seqs) {
    Slot& s = slots_[static_cast<size_t>(q)];
    if (!s.job) continue;
    sub.clear();
    for (const auto& b : batch)
      if (b.seq == q) sub.push_back(b);
    try {
      ctx_.decode(sub, logits);
    } catch (const std::exception& e) {
      MOE_LOG_WARN("serve: decode failed for slot {} alone: {}", q, e.what());
      finish(s, "error", std::string("decode failed: ") + e.what());
      continue;
    }
    for (const auto& b : sub) {
      s.cached.push_back(b.token);
      if (!s.generating) s.n_fed++;
    }
    if (sub.back().logits) on_logits_guarded(s, logits.data());
  }
}

bool Scheduler::step() {
  for (auto& s : slots_)
    if (s.job && s.job->cancelled) finish(s, "cancelled");
  std::vector<BatchToken> batch;
  std::vector<Slot*> rows;  // slot of each logits row
  for (auto& s : slots_) {
    if (!s.job || !s.generating) continue;
    batch.push_back({s.last, s.seq, ctx_.n_past(s.seq), true});
    rows.push_back(&s);
  }
  int64_t budget = std::max<int64_t>(n_batch_ - static_cast<int64_t>(batch.size()), 16);
  const size_t n = slots_.size();
  for (size_t k = 0; k < n && budget > 0; ++k) {
    Slot& s = slots_[(rr_ + k) % n];
    if (!s.job || s.generating) continue;
    const auto& prompt = s.job->params.prompt;
    const int64_t take = std::min<int64_t>(budget, static_cast<int64_t>(prompt.size() - s.n_fed));
    for (int64_t i = 0; i < take; ++i) {
      const size_t j = s.n_fed + static_cast<size_t>(i);
      batch.push_back({prompt[j], s.seq, static_cast<int64_t>(j), j + 1 == prompt.size()});
    }
    if (s.n_fed + static_cast<size_t>(take) == prompt.size()) rows.push_back(&s);
    budget -= take;
  }
  rr_ = (rr_ + 1) % std::max<size_t>(n, 1);
  if (batch.empty()) return false;

  const auto t0 = Clock::now();
  std::vector<float> logits;
  bool decoded = true;
  try {
    ctx_.decode(batch, logits);
  } catch (const std::exception& e) {
    // One slot's bad input (an id out of range, a position past the context) or any
    // other failure must not end every job in the batch: re-run it slot by slot.
    MOE_LOG_WARN("serve: decode of a {}-token batch failed ({}); retrying slot by slot", batch.size(), e.what());
    decoded = false;
  }
  if (decoded) {
    for (const auto& b : batch) {
      Slot& s = slots_[static_cast<size_t>(b.seq)];
      s.cached.push_back(b.token);
      if (!s.generating) s.n_fed++;
    }
    // Rows are in batch order: generating slots first, then prompt-final slots in the order added.
    const int64_t n_vocab = model_->cfg.n_vocab;
    for (size_t i = 0; i < rows.size(); ++i)
      on_logits_guarded(*rows[i], logits.data() + static_cast<int64_t>(i) * n_vocab);
  } else {
    decode_each(batch);
  }
  const auto t1 = Clock::now();

  std::lock_guard<std::mutex> lk(mu_);
  stats_.steps++;
  stats_.busy_seconds += std::chrono::duration<double>(t1 - t0).count();
  recent_.emplace_back(t1, static_cast<int64_t>(rows.size()));
  while (!recent_.empty() && t1 - recent_.front().first > std::chrono::seconds(5)) recent_.pop_front();
  if (t1 - last_load_copy_ > std::chrono::milliseconds(200)) {
    stats_.expert_load = ctx_.expert_load();
    last_load_copy_ = t1;
  }
  return true;
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      const bool active = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; });
      if (!active && queue_.empty()) {
        if (draining_) break;
        cv_.wait(lk, [&] { return !queue_.empty() || draining_; });
      }
      if (draining_ && Clock::now() >= deadline_) {
        for (auto& j : queue_) j->cancelled = true;
        for (auto& s : slots_)
          if (s.job) s.job->cancelled = true;
      }
    }
    admit();
    try {
      step();
    } catch (const std::exception& e) {  // never let the scheduler thread die
      MOE_LOG_WARN("serve: scheduler step failed: {}", e.what());
      for (auto& s : slots_)
        if (s.job) finish(s, "error", e.what());
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.slots_busy = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; });
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  stats_.expert_load = ctx_.expert_load();
}

}  // namespace moe::server
