// The OpenAI-compatible request layer: strict parsing and validation of request
// bodies into generation parameters (ApiError -> HTTP 400 with an OpenAI-style
// error object), and the JSON builders of responses and stream chunks. Called by
// http.cpp and by the fuzz harness (tests/server/server_fuzz_test.cpp). Invariant:
// untrusted bytes only ever produce a ParsedRequest or an ApiError (never another
// exception, never unbounded work): nesting, sizes and every number are bounded.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/scheduler.h"

namespace moe::server {

struct ApiError {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;
  int retry_after_s = 0;  // > 0: sent as a Retry-After header (429 / 503)
};

// Request-body limits that do not depend on the model or the command line.
inline constexpr int kMaxJsonDepth = 64;          // nesting of arrays/objects in a body
inline constexpr size_t kMaxStopStrings = 16;     // entries of `stop`
inline constexpr size_t kMaxStopBytes = 256;      // bytes of one stop string
inline constexpr size_t kMaxMessages = 100000;    // entries of `messages`
inline constexpr size_t kMaxLogitBias = 1024;     // entries of `logit_bias`
inline constexpr double kMaxLogitBiasValue = 100; // |bias| (OpenAI's range)

nlohmann::json error_json(const ApiError& e);
// JSON text with invalid UTF-8 replaced (never throws on odd bytes).
std::string dump(const nlohmann::json& j);

struct Limits {
  int64_t n_ctx = 4096;           // per slot
  int64_t max_prompt_tokens = 0;  // 0: n_ctx - 1
  int64_t max_tokens = 4096;      // largest max_tokens a request may ask for
  int64_t default_max_tokens = 0; // 0: what the context leaves (capped by max_tokens)
};

enum class Endpoint { chat, completion };

// A parsed request: generation parameters plus the response options.
struct ParsedRequest {
  Endpoint endpoint = Endpoint::chat;
  GenParams gen;
  bool stream = false, include_usage = false;
  bool logprobs = false;
  std::string prompt_text;  // the prompt (chat: the rendered template)
};

struct PromptContext {
  const Tokenizer& tok;
  const std::string& chat_template;  // never empty (ChatML fallback)
  const Limits& limits;
};

// Parse a request body (a JSON object nested at most kMaxJsonDepth deep); throws ApiError.
nlohmann::json parse_body(std::string_view body);
ParsedRequest parse_chat(const nlohmann::json& j, const PromptContext& pc);
ParsedRequest parse_completion(const nlohmann::json& j, const PromptContext& pc);

// Response builders. `text` is the whole generated text (non-streaming).
struct ResponseMeta {
  std::string id, model;
  int64_t created = 0;
};
nlohmann::json usage_json(const Job& job);
nlohmann::json logprobs_json(const ParsedRequest& r, const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                             size_t text_offset);
nlohmann::json final_response(const ParsedRequest& r, const ResponseMeta& m, const Job& job, const std::string& text,
                              const std::vector<TokenLogprob>& lps, const Tokenizer& tok);
// One stream chunk: delta text (chat: role on the first), finish_reason or null.
nlohmann::json stream_chunk(const ParsedRequest& r, const ResponseMeta& m, const std::string* text, bool first,
                            const std::string& finish_reason, const nlohmann::json& logprobs);
nlohmann::json usage_chunk(const ParsedRequest& r, const ResponseMeta& m, const Job& job);

extern const char* const kChatMlTemplate;

}  // namespace moe::server
