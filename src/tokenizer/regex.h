// PCRE2 wrapper for pre-tokenizer patterns: compiled once with UTF + UCP and
// PCRE2_MATCH_INVALID_UTF (invalid bytes never match and never crash), JIT
// compiled where available. Also holds the known split patterns by name
// (GPT-2, Llama-3, Qwen2, DeepSeek-V3, o200k, Kimi K2) for GGUF `tokenizer.ggml.pre`.
// A Regex is immutable after construction and safe to share between threads.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe::tok {

class Regex {
 public:
  // Throws moe::Error naming the pattern and the PCRE2 message on failure.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of every non-overlapping match, left to right
  // (an empty match advances by one character and is not reported).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Rewrites constructs written for other engines (Oniguruma / Rust regex) into
// PCRE2 with the same meaning: `(?i:'s|'t|...)` becomes explicit ASCII cases so
// that caseless matching cannot fold U+017F or U+212A into ASCII letters.
std::string regex_compat(std::string pattern);

// Split patterns for a GGUF `tokenizer.ggml.pre` value; empty if unknown.
std::vector<std::string> known_pretokenizer_patterns(const std::string& pre_name);
const std::string& gpt2_pattern();
const std::string& kimi_k2_pattern();  // GGUF tokenizer.ggml.pre "kimi-k2"

}  // namespace moe::tok
