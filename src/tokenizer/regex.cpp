// PCRE2 compile/match for pre-tokenizer regexes and the table of known split
// patterns. Match data is thread_local so concurrent encodes never share state.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "base/error.h"

namespace moe::tok {

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   opts, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    throw_error("tokenizer: cannot compile pre-tokenizer regex at offset {}: {} (pattern: {})", off,
                reinterpret_cast<const char*>(buf), pattern);
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  struct MatchData {
    pcre2_match_data* md = pcre2_match_data_create(8, nullptr);
    ~MatchData() { pcre2_match_data_free(md); }
  };
  thread_local MatchData tl;
  auto* code = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, n = text.size();
  while (pos <= n) {
    int rc = pcre2_match(code, subject, n, pos, 0, tl.md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      throw_error("tokenizer: regex match failed: {}", reinterpret_cast<const char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tl.md);
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
    } else {
      // Empty match: step over one character (or one invalid byte).
      if (b >= n) break;
      pos = b + 1;
      while (pos < n && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
}

std::string regex_compat(std::string p) {
  static const std::pair<std::string_view, std::string_view> kRewrites[] = {
      {"(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))"},
  };
  for (const auto& [from, to] : kRewrites) {
    for (size_t at = p.find(from); at != std::string::npos; at = p.find(from, at + to.size()))
      p.replace(at, from.size(), to);
  }
  return p;
}

const std::string& gpt2_pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

std::vector<std::string> known_pretokenizer_patterns(const std::string& name) {
  static const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::string qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::string o200k =
      R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::vector<std::string> deepseek3 = {
      R"(\p{N}{1,3})",
      "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
  };
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "smaug-bpe" ||
      name == "falcon3" || name == "pixtral")
    return {llama3};
  if (name == "qwen2" || name == "qwen35" || name == "deepseek-r1-qwen" || name == "megrez" ||
      name == "hunyuan")
    return {qwen2};
  if (name == "gpt-4o" || name == "gpt-oss" || name == "o200k") return {o200k};
  if (name == "deepseek-v3") return deepseek3;
  if (name == "default" || name == "gpt2" || name == "gpt-2" || name == "olmo") return {gpt2_pattern()};
  return {};
}

}  // namespace moe::tok
