// Prometheus exposition of the server's counters and the scheduler's statistics.
#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace moe::server {

const char* route_name(Route r) {
  static const char* names[] = {"chat_completions", "completions", "models", "health",
                                "metrics", "tokenize", "detokenize", "other"};
  return names[static_cast<size_t>(r)];
}

std::string render_metrics(const Metrics& m, const SchedulerStats& s, double uptime_s) {
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  head("moe_requests_total", "counter", "HTTP requests by route");
  for (size_t i = 0; i < static_cast<size_t>(Route::count); ++i)
    o += fmt::format("moe_requests_total{{route=\"{}\"}} {}\n", route_name(static_cast<Route>(i)), m.requests[i].load());
  head("moe_request_errors_total", "counter", "Error responses by class");
  o += fmt::format("moe_request_errors_total{{class=\"4xx\"}} {}\n", m.errors_4xx.load());
  o += fmt::format("moe_request_errors_total{{class=\"5xx\"}} {}\n", m.errors_5xx.load());
  head("moe_client_disconnects_total", "counter", "Generations cancelled because the client went away");
  o += fmt::format("moe_client_disconnects_total {}\n", m.disconnects.load());
  head("moe_streams_open", "gauge", "Streaming responses in progress");
  o += fmt::format("moe_streams_open {}\n", m.streams_open.load());
  head("moe_prompt_tokens_total", "counter", "Prompt tokens of admitted requests");
  o += fmt::format("moe_prompt_tokens_total {}\n", s.prompt_tokens);
  head("moe_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache");
  o += fmt::format("moe_prompt_tokens_cached_total {}\n", s.cached_tokens);
  head("moe_generated_tokens_total", "counter", "Generated tokens");
  o += fmt::format("moe_generated_tokens_total {}\n", s.generated_tokens);
  head("moe_generation_tokens_per_second", "gauge", "Generated tokens per second over the last 5 s");
  o += fmt::format("moe_generation_tokens_per_second {:.3f}\n", s.recent_tok_per_s);
  head("moe_busy_tokens_per_second", "gauge", "Generated tokens per second of decoding time since start");
  o += fmt::format("moe_busy_tokens_per_second {:.3f}\n", s.busy_seconds > 0 ? s.generated_tokens / s.busy_seconds : 0.0);
  head("moe_decode_steps_total", "counter", "Batched forward passes");
  o += fmt::format("moe_decode_steps_total {}\n", s.steps);
  head("moe_jobs_finished_total", "counter", "Generations finished (any reason)");
  o += fmt::format("moe_jobs_finished_total {}\n", s.jobs_done);
  head("moe_jobs_cancelled_total", "counter", "Generations cancelled");
  o += fmt::format("moe_jobs_cancelled_total {}\n", s.jobs_cancelled);
  head("moe_queue_depth", "gauge", "Requests waiting for a slot");
  o += fmt::format("moe_queue_depth {}\n", s.queue_depth);
  head("moe_slots_busy", "gauge", "Slots serving a request");
  o += fmt::format("moe_slots_busy {}\n", s.slots_busy);
  head("moe_slots_total", "gauge", "Slots (-np)");
  o += fmt::format("moe_slots_total {}\n", s.slots_total);
  head("moe_uptime_seconds", "gauge", "Seconds since the server started");
  o += fmt::format("moe_uptime_seconds {:.1f}\n", uptime_s);
  head("moe_expert_tokens_total", "counter", "Tokens routed to each expert, per layer");
  for (size_t l = 0; l < s.expert_load.size(); ++l)
    for (size_t e = 0; e < s.expert_load[l].size(); ++e)
      o += fmt::format("moe_expert_tokens_total{{layer=\"{}\",expert=\"{}\"}} {}\n", l, e, s.expert_load[l][e]);
  head("moe_expert_load_imbalance", "gauge", "Per layer: busiest expert's tokens over the mean (1 = even)");
  for (size_t l = 0; l < s.expert_load.size(); ++l) {
    const auto& v = s.expert_load[l];
    if (v.empty()) continue;
    int64_t sum = 0, mx = 0;
    for (int64_t x : v) sum += x, mx = std::max(mx, x);
    const double mean = static_cast<double>(sum) / static_cast<double>(v.size());
    o += fmt::format("moe_expert_load_imbalance{{layer=\"{}\"}} {:.4f}\n", l, mean > 0 ? mx / mean : 0.0);
  }
  return o;
}

}  // namespace moe::server
