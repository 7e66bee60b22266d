// One persistent pool of worker threads (spin briefly, then sleep).
// parallel_for(n, fn) runs fn(i, thread_index) for i in [0, n) over all threads,
// the caller included, and returns when all items are done. Items are claimed
// dynamically with an atomic counter, so uneven items (experts with different
// token counts) balance themselves. Not re-entrant: call from one thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  void parallel_for(int64_t n, const std::function<void(int64_t item, int thread)>& fn);

 private:
  void worker(int index);
  // Claims and runs items of job `tag` until none is left; false once the job is over.
  void run_items(uint32_t tag, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Job tag (high 32 bits) and next item index (low 32 bits), claimed by CAS: a
  // worker that wakes up late for a finished job fails its claim instead of
  // holding up the caller, which waits only for items actually taken (done_).
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> n_items_{0};
  std::atomic<const std::function<void(int64_t, int)>*> fn_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace moe
