// Thread pool: a tagged ticket announces work and hands out items; workers spin
// ~50us, then sleep on a condition variable until the next job.
#include "base/thread_pool.h"

#include <chrono>

#include "base/error.h"

namespace moe {

namespace {
constexpr uint64_t kIndexMask = 0xffffffffu;
uint32_t tag_of(uint64_t ticket) { return static_cast<uint32_t>(ticket >> 32); }
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    const uint32_t next = tag_of(ticket_.load()) + 1;
    n_items_.store(0);
    ticket_.store(static_cast<uint64_t>(next) << 32);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_items(uint32_t tag, int thread) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if (tag_of(t) != tag) return;  // a later job: this one is over
    const int64_t n = n_items_.load(std::memory_order_acquire);
    const auto* fn = fn_.load(std::memory_order_acquire);
    const int64_t i = static_cast<int64_t>(t & kIndexMask);
    if (i >= n) return;
    // The claim succeeds only while the ticket still carries this job's tag, so
    // n and fn read above belong to it (a new job changes the tag before reuse).
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      continue;
    (*fn)(i, thread);
    done_.fetch_add(1, std::memory_order_release);
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  MOE_CHECK(static_cast<uint64_t>(n) <= kIndexMask, "parallel_for over {} items", n);
  uint32_t tag;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Close the previous job's ticket first (a new tag with an index past every
    // item), then publish n and fn with release, then open the new tag. Without the
    // closing step a worker still in run_items of the previous job could read the
    // new n and fn, claim index i of the old ticket before it changed, and run item
    // i of the new job a second time (seen once in CI: an item hit twice). A worker
    // that reads the new n or fn now also sees the closed ticket, so its claim fails.
    const uint32_t closed = tag_of(ticket_.load(std::memory_order_relaxed)) + 1;
    ticket_.store((static_cast<uint64_t>(closed) << 32) | kIndexMask, std::memory_order_seq_cst);
    tag = closed + 1;
    done_.store(0, std::memory_order_release);
    fn_.store(&fn, std::memory_order_release);
    n_items_.store(n, std::memory_order_release);
    ticket_.store(static_cast<uint64_t>(tag) << 32, std::memory_order_release);
  }
  cv_.notify_all();
  run_items(tag, 0);
  // Every item is claimed; wait for the ones other threads are still running.
  while (done_.load(std::memory_order_acquire) < n) std::this_thread::yield();
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    while (tag_of(ticket_.load(std::memory_order_acquire)) == seen) {
      if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(50)) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return tag_of(ticket_.load()) != seen || stop_; });
        break;
      }
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = tag_of(ticket_.load(std::memory_order_acquire));
    run_items(seen, index);
  }
}

}  // namespace moe
