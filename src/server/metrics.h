// Server metrics: request counters kept by the HTTP layer (atomics) and the
// Prometheus text exposition of them together with the scheduler's statistics
// (tokens, tokens/s, queue depth, busy slots, per-layer expert load).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "server/scheduler.h"

namespace moe::server {

enum class Route { chat, completions, models, health, metrics, tokenize, detokenize, other, count };
const char* route_name(Route r);

struct Metrics {
  std::array<std::atomic<int64_t>, static_cast<size_t>(Route::count)> requests{};
  std::atomic<int64_t> errors_4xx{0}, errors_5xx{0}, streams_open{0}, disconnects{0};
  std::atomic<int64_t> rejected_busy{0};  // 429: the job queue was full
  void count(Route r) { requests[static_cast<size_t>(r)]++; }
};

// Prometheus text format (version 0.0.4).
std::string render_metrics(const Metrics& m, const SchedulerStats& s, double uptime_s);

}  // namespace moe::server
