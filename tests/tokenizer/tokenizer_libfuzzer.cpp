// libFuzzer entry point for the tokenizer.json loader (optional, clang only; not
// run in CI). Build: see tests/tokenizer/CMakeLists.txt (target tokenizer_libfuzzer);
// seed corpus: build/<preset>/tests/tokenizer/tokenizer_fuzz_seeds/*.json (the
// cut-down real tokenizers that tokenizer_json_fuzz_test writes). Input: tokenizer.json text,
// optionally followed by a NUL byte and tokenizer_config.json text.
// Invariant checked: from_json_text succeeds and the tokenizer keeps the
// invariants of fuzz::exercise(), or it throws moe::Error; anything else aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view tj = in.substr(0, nul);
  const std::string_view cj = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  try {
    auto tk = moe::Tokenizer::from_json_text(tj, "libfuzzer.json", cj, "libfuzzer_config.json");
    std::mt19937 rng(static_cast<uint32_t>(size));
    moe::fuzz::Stats st;
    const std::string bad = moe::fuzz::exercise(*tk, rng, st);
    if (!bad.empty()) {
      std::fprintf(stderr, "invariant broken: %s\n", bad.c_str());
      std::abort();
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
