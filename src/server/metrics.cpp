// Prometheus exposition of the server's counters and the scheduler's statistics.
#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace moe::server {

const char* route_name(Route r) {
  static const char* names[] = {"chat_completions", "completions", "models",     "health",
                                "metrics",          "tokenize",    "detokenize", "other"};
  return names[static_cast<size_t>(r)];
}

std::string render_metrics(const Metrics& m, const SchedulerStats& s, double uptime_s) {
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  // A metric with one unlabelled sample; `value` is already formatted.
  auto single = [&](const char* name, const char* type, const char* help,
                    const std::string& value) {
    head(name, type, help);
    o += fmt::format("{} {}\n", name, value);
  };
  head("moe_requests_total", "counter", "HTTP requests by route");
  for (size_t i = 0; i < static_cast<size_t>(Route::count); ++i)
    o += fmt::format("moe_requests_total{{route=\"{}\"}} {}\n", route_name(static_cast<Route>(i)),
                     m.requests[i].load());
  head("moe_request_errors_total", "counter", "Error responses by class");
  o += fmt::format("moe_request_errors_total{{class=\"4xx\"}} {}\n", m.errors_4xx.load());
  o += fmt::format("moe_request_errors_total{{class=\"5xx\"}} {}\n", m.errors_5xx.load());
  single("moe_client_disconnects_total", "counter",
         "Generations cancelled because the client went away",
         fmt::format("{}", m.disconnects.load()));
  single("moe_requests_rejected_busy_total", "counter",
         "Generation requests answered 429 because --max-queue requests already waited",
         fmt::format("{}", m.rejected_busy.load()));
  single("moe_streams_open", "gauge", "Streaming responses in progress",
         fmt::format("{}", m.streams_open.load()));
  single("moe_prompt_tokens_total", "counter", "Prompt tokens of admitted requests",
         fmt::format("{}", s.prompt_tokens));
  single("moe_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache",
         fmt::format("{}", s.cached_tokens));
  single("moe_generated_tokens_total", "counter", "Generated tokens",
         fmt::format("{}", s.generated_tokens));
  single("moe_generation_tokens_per_second", "gauge",
         "Generated tokens per second over the last 5 s",
         fmt::format("{:.3f}", s.recent_tok_per_s));
  single("moe_busy_tokens_per_second", "gauge",
         "Generated tokens per second of decoding time since start",
         fmt::format("{:.3f}", s.busy_seconds > 0 ? s.generated_tokens / s.busy_seconds : 0.0));
  single("moe_decode_steps_total", "counter", "Batched forward passes", fmt::format("{}", s.steps));
  single("moe_jobs_finished_total", "counter", "Generations finished (any reason)",
         fmt::format("{}", s.jobs_done));
  single("moe_jobs_cancelled_total", "counter", "Generations cancelled",
         fmt::format("{}", s.jobs_cancelled));
  single("moe_queue_depth", "gauge", "Requests waiting for a slot",
         fmt::format("{}", s.queue_depth));
  single("moe_slots_busy", "gauge", "Slots serving a request", fmt::format("{}", s.slots_busy));
  single("moe_slots_total", "gauge", "Slots (-np)", fmt::format("{}", s.slots_total));
  single("moe_uptime_seconds", "gauge", "Seconds since the server started",
         fmt::format("{:.1f}", uptime_s));
  head("moe_expert_tokens_total", "counter", "Tokens routed to each expert, per layer");
  for (size_t l = 0; l < s.expert_load.size(); ++l)
    for (size_t e = 0; e < s.expert_load[l].size(); ++e)
      o += fmt::format("moe_expert_tokens_total{{layer=\"{}\",expert=\"{}\"}} {}\n", l, e,
                       s.expert_load[l][e]);
  head("moe_expert_load_imbalance", "gauge",
       "Per layer: busiest expert's tokens over the mean (1 = even)");
  for (size_t l = 0; l < s.expert_load.size(); ++l) {
    const auto& v = s.expert_load[l];
    if (v.empty()) continue;
    int64_t sum = 0, mx = 0;
    for (int64_t x : v) sum += x, mx = std::max(mx, x);
    const double mean = static_cast<double>(sum) / static_cast<double>(v.size());
    o += fmt::format("moe_expert_load_imbalance{{layer=\"{}\"}} {:.4f}\n", l,
                     mean > 0 ? mx / mean : 0.0);
  }
  return o;
}

}  // namespace moe::server
