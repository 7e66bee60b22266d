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
  void run_items(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  int64_t n_items_ = 0;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  bool stop_ = false;
};

}  // namespace moe
