// Shared parts of the tokenizer fuzz harnesses (tokenizer_json_fuzz_test.cpp,
// tokenizer_gguf_fuzz_test.cpp, tokenizer_libfuzzer.cpp): exercising a loaded
// Tokenizer with random text, the statistics each harness prints, and the
// budget read from MOE_FUZZ_ITERS / MOE_FUZZ_SECONDS / MOE_FUZZ_SEED.
// exercise() checks the invariants every loaded tokenizer must keep: encode
// returns ids in [0, n_vocab), decode/StreamDecoder accept them, out-of-range
// ids are moe::Error, and nothing else is ever thrown.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace moe::fuzz {

inline uint64_t env_or(const char* name, uint64_t def) {
  const char* s = std::getenv(name);
  return s ? std::strtoull(s, nullptr, 10) : def;
}

struct Stats {
  uint64_t execs = 0, accepted = 0, rejected = 0, encodes = 0, encode_errors = 0;
  double max_exec_s = 0;
  std::map<std::string, uint64_t> categories;
};

// "file.json: model.vocab["x"]: token id 9 is out of range" -> "model.vocab[K]: token id N is out of range":
// the file name goes, quoted names fold to K and words with a digit to N; cut at 70 chars.
inline std::string category(std::string_view m) {
  if (auto c = m.find(": "); c != std::string_view::npos && m.substr(0, c).find(' ') == std::string_view::npos)
    m.remove_prefix(c + 2);
  std::string out;
  bool in_quote = false;
  for (size_t i = 0; i < m.size() && out.size() < 70; ++i) {
    const char c = m[i];
    if (c == '\'' || c == '"') {
      if (!in_quote) out += 'K';
      in_quote = !in_quote;
      continue;
    }
    if (in_quote) continue;
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != 'N') out += 'N';
      continue;
    }
    out += c;
  }
  return out;
}

inline void report(const char* what, const Stats& st, size_t top = 25) {
  std::printf("[%s] executions=%llu accepted=%llu rejected=%llu encodes=%llu encode_errors=%llu "
              "max_exec=%.3fs categories=%zu\n",
              what, static_cast<unsigned long long>(st.execs), static_cast<unsigned long long>(st.accepted),
              static_cast<unsigned long long>(st.rejected), static_cast<unsigned long long>(st.encodes),
              static_cast<unsigned long long>(st.encode_errors), st.max_exec_s, st.categories.size());
  std::vector<std::pair<uint64_t, std::string>> sorted;
  for (const auto& [c, n] : st.categories) sorted.emplace_back(n, c);
  std::sort(sorted.rbegin(), sorted.rend());
  for (size_t i = 0; i < sorted.size() && i < top; ++i)
    std::printf("  %8llu  %s\n", static_cast<unsigned long long>(sorted[i].first), sorted[i].second.c_str());
  std::fflush(stdout);
}

// Random text: ASCII words, whitespace runs, digits, Latin/Greek/CJK/Hangul,
// emoji and combining marks, U+2581, invalid bytes, and pieces of the
// tokenizer's own tokens (so added and special tokens appear in the text).
inline std::string random_text(std::mt19937& rng, const Tokenizer* tok, size_t max_pieces = 8) {
  static const char* kPieces[] = {
      "hello", " world", "It's", " we'LL", "'s", "'ſ", "  ", "\n\n", "\r\n", "\t", "12345678", " 3.14",
      "中文", "日本語の", "한국어", "Ünïcödé", "e\xCC\x81", "👨‍👩‍👧", "🇺🇸", "\xE2\x96\x81", "Ελληνικά",
      "Привет", "مرحبا", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|endoftext|>", "<0x41>", "\xFF",
      "\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\xED\xA0\x80", "\xC0\xAF", "\x01\x7F", "ſtraße",
      "。、「」", "ー", "HTTPServer", "camelCase", "x**2", "{\"a\": [1]}", "    ", "\u3000", "\u00a0"};
  std::string s;
  const size_t n = 1 + rng() % max_pieces;
  for (size_t i = 0; i < n; ++i) {
    switch (rng() % 5) {
      case 0:
      case 1: s += kPieces[rng() % std::size(kPieces)]; break;
      case 2:
        if (tok && tok->n_vocab() > 0) {
          try {
            s += tok->token_text(static_cast<int32_t>(rng() % static_cast<uint32_t>(tok->n_vocab())));
          } catch (const moe::Error&) {
          }
        }
        break;
      case 3:
        for (size_t k = rng() % 6; k > 0; --k) s += static_cast<char>(rng());
        break;
      default:
        for (size_t k = 1 + rng() % 8; k > 0; --k) s += static_cast<char>('a' + rng() % 26);
        break;
    }
  }
  return s;
}

// Runs encode/decode on random text and checks the invariants. Returns a
// failure description, or "" when all held. moe::Error from encode is allowed
// (a hostile regex may hit the match limit) and counted.
inline std::string exercise(const Tokenizer& tok, std::mt19937& rng, Stats& st, int n_texts = 4) {
  const int32_t nv = tok.n_vocab();
  if (nv <= 0) return "loaded tokenizer has n_vocab <= 0";
  for (int t = 0; t < n_texts; ++t) {
    std::string text = random_text(rng, &tok);
    if (rng() % 64 == 0) text += std::string(4096 + rng() % 8192, " \n7a"[rng() % 4]);
    const bool add_special = rng() & 1, parse_special = rng() & 1;
    std::vector<int32_t> ids;
    ++st.encodes;
    try {
      ids = tok.encode(text, add_special, parse_special);
    } catch (const moe::Error& e) {
      ++st.encode_errors;
      ++st.categories["encode: " + category(e.what())];
      continue;
    }
    for (int32_t id : ids)
      if (id < 0 || id >= nv) return "encode returned id " + std::to_string(id) + " outside [0, " + std::to_string(nv) + ")";
    const std::string whole = tok.decode(ids, rng() & 1);
    StreamDecoder sd(tok, false);
    std::string streamed;
    for (int32_t id : ids) streamed += sd.push(id);
    streamed += sd.flush();
    if (streamed != tok.decode(ids, false)) return "StreamDecoder output differs from decode()";
    (void)whole;
  }
  // Random valid ids decode; invalid ids are moe::Error.
  std::vector<int32_t> ids;
  for (int k = 0; k < 8; ++k) ids.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(nv)));
  (void)tok.decode(ids, rng() & 1);
  for (int32_t bad : {-1, nv, INT32_MIN, INT32_MAX}) {
    bool threw = false;
    try {
      (void)tok.decode(std::vector<int32_t>{bad});
    } catch (const moe::Error&) {
      threw = true;
    }
    if (!threw) return "decode accepted id " + std::to_string(bad);
    if (tok.is_special(bad)) return "is_special true for id " + std::to_string(bad);
  }
  for (int32_t id : {tok.bos_id(), tok.eos_id()})
    if (id < -1 || id >= nv) return "special id " + std::to_string(id) + " out of range";
  (void)tok.is_eog(-1);
  (void)tok.token_id("hello");
  return "";
}

}  // namespace moe::fuzz
