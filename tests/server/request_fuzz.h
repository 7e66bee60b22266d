// The request-body oracle shared by the bounded mutation fuzzer (server_fuzz_test.cpp,
// ctest labels server + fuzz) and the libFuzzer entry point (server_libfuzzer.cpp):
// one body goes through what http.cpp does for /v1/chat/completions and
// /v1/completions (parse_body, parse_chat with the chat template and the tokenizer,
// parse_completion). Invariant checked: the outcome is a ParsedRequest that respects
// every limit, or an ApiError with a 4xx status and a message; anything else (another
// exception, a crash, a sanitizer report) is a finding.
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "server/api.h"
#include "server/text.h"

namespace moe::server::fuzz {

enum class Outcome { accepted, rejected };

// Throws std::logic_error describing a broken invariant.
inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error(what);
}

inline void check_parsed(const ParsedRequest& r, const PromptContext& pc) {
  const auto& g = r.gen;
  const Limits& lim = pc.limits;
  const int64_t n_prompt = static_cast<int64_t>(g.prompt.size());
  require(n_prompt >= 1, "accepted an empty prompt");
  for (int32_t id : g.prompt) require(id >= 0 && id < pc.tok.n_vocab(), "accepted a token id out of range");
  require(g.max_tokens >= 1 && g.max_tokens <= lim.max_tokens, "max_tokens outside [1, limit]");
  require(n_prompt + g.max_tokens <= lim.n_ctx, "prompt + max_tokens exceed the context");
  const auto& s = g.sampler;
  require(std::isfinite(s.temperature) && s.temperature >= 0 && s.temperature <= 2, "temperature out of range");
  require(std::isfinite(s.top_p) && s.top_p > 0 && s.top_p <= 1, "top_p out of range");
  require(std::isfinite(s.min_p) && s.min_p >= 0 && s.min_p <= 1, "min_p out of range");
  require(std::isfinite(s.repeat_penalty) && s.repeat_penalty > 0 && s.repeat_penalty <= 10, "repeat_penalty");
  require(s.top_k >= 0 && s.repeat_last_n >= 0, "negative top_k / repeat_last_n");
  require(g.top_logprobs >= -1 && g.top_logprobs <= 20, "top_logprobs out of range");
  require(g.stop.size() <= kMaxStopStrings, "too many stop strings");
  for (const auto& st : g.stop)
    require(!st.empty() && st.size() <= 3 * kMaxStopBytes && sanitize_utf8(st) == st, "bad stop string");
  require(g.logit_bias.size() <= kMaxLogitBias, "too many logit_bias entries");
  for (const auto& [id, b] : g.logit_bias)
    require(id >= 0 && id < pc.tok.n_vocab() && std::isfinite(b) && std::fabs(b) <= kMaxLogitBiasValue,
            "bad logit_bias entry");
}

// One body through one endpoint. Throws std::logic_error (or lets an unexpected
// exception escape) on a finding.
inline Outcome run_one(std::string_view body, bool chat, const PromptContext& pc, std::string* param = nullptr) {
  try {
    const nlohmann::json j = parse_body(body);
    const ParsedRequest r = chat ? parse_chat(j, pc) : parse_completion(j, pc);
    check_parsed(r, pc);
    return Outcome::accepted;
  } catch (const ApiError& e) {
    require(e.status >= 400 && e.status < 500, "ApiError status " + std::to_string(e.status));
    require(!e.message.empty(), "ApiError without a message");
    const std::string text = dump(error_json(e));
    require(sanitize_utf8(text) == text, "error body is not UTF-8");
    if (param) *param = e.param;
    return Outcome::rejected;
  }
}

}  // namespace moe::server::fuzz
