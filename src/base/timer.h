// Wall-clock timer.
#pragma once
#include <chrono>

namespace moe {
class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};
// Adds the scope's wall time to *slot (no-op when slot is null): stage profiles.
class StageTimer {
 public:
  explicit StageTimer(double* slot) : slot_(slot) {
    if (slot_) start_ = std::chrono::steady_clock::now();
  }
  ~StageTimer() {
    if (slot_) *slot_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  double* slot_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace moe
