// The thread pool: every item runs exactly once per parallel_for, on a valid
// thread index, for any item count and thread count; back-to-back jobs never
// leak items into each other (workers that wake late for a finished job must not
// run anything of the next one); destruction with sleeping workers returns.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "base/thread_pool.h"

namespace moe {
namespace {

TEST(ThreadPool, EveryItemExactlyOnceForManyJobSizes) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::mt19937 rng(threads);
    for (int job = 0; job < 2000; ++job) {
      const int64_t n = job < 40 ? job : 1 + static_cast<int64_t>(rng() % 300);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_thread{0};
      pool.parallel_for(n, [&](int64_t i, int t) {
        if (t < 0 || t >= threads) bad_thread.fetch_add(1);
        hits[static_cast<size_t>(i)].fetch_add(1);
      });
      ASSERT_EQ(bad_thread.load(), 0);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "job " << job << " item " << i << " threads " << threads;
    }
  }
}

TEST(ThreadPool, ThreadIndicesAreExclusiveWhileRunning) {
  // Per-thread scratch relies on it: no two running items share a thread index.
  ThreadPool pool(4);
  std::vector<std::atomic<int>> busy(4);
  std::atomic<int> clash{0};
  for (int job = 0; job < 200; ++job) {
    pool.parallel_for(64, [&](int64_t, int t) {
      if (busy[t].fetch_add(1) != 0) clash.fetch_add(1);
      std::this_thread::yield();
      busy[t].fetch_sub(1);
    });
  }
  EXPECT_EQ(clash.load(), 0);
}

TEST(ThreadPool, UnevenItemsAndSleepingWorkers) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 5; ++round) {
    // Let the workers fall asleep (they spin ~50 us), then wake them with work.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pool.parallel_for(10, [&](int64_t i, int) {
      if (i == 3) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      sum.fetch_add(i + 1);
    });
  }
  EXPECT_EQ(sum.load(), 5 * 55);
}

TEST(ThreadPool, DestructionReturnsWithIdleOrSleepingWorkers) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(4);
    if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (i % 3 == 0) pool.parallel_for(7, [](int64_t, int) {});
  }
  SUCCEED();
}

}  // namespace
}  // namespace moe
