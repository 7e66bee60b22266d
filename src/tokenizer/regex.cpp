// PCRE2 compile/match for pre-tokenizer regexes and the table of known split
// patterns. Match data, match context (with the limits of limits.h) and the JIT
// stack are thread_local so concurrent encodes never share state. Patterns may
// come from untrusted tokenizer.json files: compile errors name the pattern,
// \C is refused, and a match that exceeds the match/depth/heap/JIT-stack limits
// (catastrophic backtracking) throws moe::Error instead of running unbounded.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/limits.h"
#include "tokenizer/utf8.h"

namespace moe::tok {

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  const uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   opts, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    throw_error("cannot compile regex at offset {}: {} (pattern: {})", off, reinterpret_cast<const char*>(buf),
                quote(pattern, 120));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

namespace {
struct MatchState {
  pcre2_match_data* md = pcre2_match_data_create(8, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit = pcre2_jit_stack_create(32 << 10, kRegexJitStackBytes, nullptr);
  MatchState() {
    if (!md || !mc) throw_error("regex: out of memory for match data");
    pcre2_set_match_limit(mc, kRegexMatchLimit);
    pcre2_set_depth_limit(mc, kRegexDepthLimit);
    pcre2_set_heap_limit(mc, kRegexHeapLimitKiB);
    if (jit) pcre2_jit_stack_assign(mc, nullptr, jit);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};
}  // namespace

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  thread_local MatchState tl;
  auto* code = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, n = text.size();
  while (pos <= n) {
    int rc = pcre2_match(code, subject, n, pos, 0, tl.md, tl.mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      throw_error("tokenizer: pre-tokenizer regex failed at byte {} of a {}-byte piece: {} (pattern: {})", pos, n,
                  reinterpret_cast<const char*>(buf), quote(pattern_, 120));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tl.md);
    size_t b = ov[0], e = ov[1];
    if (b < pos || e < b || e > n)
      throw_error("tokenizer: pre-tokenizer regex reported match [{}, {}) outside [{}, {}] (pattern: {})", b, e, pos,
                  n, quote(pattern_, 120));
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

// Kimi K2's split pattern (tiktoken pat_str of tokenization_kimi.py) in PCRE2:
//   [\p{Han}]+
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Rewritten because PCRE2 10.42 has no class intersection: [X&&[^\p{Han}]] is
// (?:(?!\p{sc=Han})[X]). tiktoken's Rust regex reads a bare \p{Han} as the Script
// property, while PCRE2 reads it as Script_Extensions (which adds 。、「」 and
// other shared CJK punctuation), so the PCRE2 form says sc= explicitly. The
// contraction group keeps real Unicode caseless matching ('ſ matches 's, as in
// Rust's simple case folding), written '(?i:...) so regex_compat leaves it alone.
const std::string& kimi_k2_pattern() {
  static const std::string p = [] {
    const std::string upper = R"((?:(?!\p{sc=Han})[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]))";
    const std::string lower = R"((?:(?!\p{sc=Han})[\p{Ll}\p{Lm}\p{Lo}\p{M}]))";
    const std::string contraction = R"((?:'(?i:s|t|re|ve|m|ll|d))?)";
    const std::string lead = R"([^\r\n\p{L}\p{N}]?)";
    return R"(\p{sc=Han}+|)" + lead + upper + "*" + lower + "+" + contraction + "|" + lead + upper + "+" + lower +
           "*" + contraction + R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }();
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
  if (name == "kimi-k2") return {kimi_k2_pattern()};
  if (name == "default" || name == "gpt2" || name == "gpt-2" || name == "olmo") return {gpt2_pattern()};
  return {};
}

}  // namespace moe::tok
