// The Kimi K2 pre-tokenizer split (GGUF tokenizer.ggml.pre = "kimi-k2"; the
// pattern is tok::kimi_k2_pattern()): on hand-checked strings from the published
// regex, and on the oracle corpus against tests/tokenizer/kimi_oracle.mjs, which
// runs the published pattern in V8's regex engine (class intersection kept as
// written). Zero mismatches allowed. Without node the oracle test skips, except
// under CI=true where a missing oracle is a failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"

namespace {

namespace fs = std::filesystem;
using moe::tok::PreStep;

std::vector<std::string> kimi_split(const std::string& text) {
  // As the GGUF loader builds it: one Split/Isolated step over the known pattern.
  PreStep st;
  st.kind = PreStep::Split;
  const auto patterns = moe::tok::known_pretokenizer_patterns("kimi-k2");
  EXPECT_EQ(patterns.size(), 1u);
  st.re = std::make_shared<moe::tok::Regex>(moe::tok::regex_compat(patterns.at(0)));
  moe::tok::Pieces p;
  moe::tok::pretokenize({st}, text, p);
  std::vector<std::string> out;
  for (size_t i = 0; i < p.ranges.size(); ++i) out.emplace_back(p.piece(i));
  return out;
}

using V = std::vector<std::string>;

// Expected pieces worked out by hand from the published alternatives:
// Han runs, letter runs (upper* lower+ | upper+ lower*) with an optional leading
// non-letter and contraction, digit triples, punctuation runs, newline runs, spaces.
TEST(KimiK2, HandCheckedSplits) {
  EXPECT_EQ(kimi_split("Hello World"), (V{"Hello", " World"}));
  EXPECT_EQ(kimi_split("I'm HAPPY's"), (V{"I'm", " HAPPY's"}));
  EXPECT_EQ(kimi_split("123456"), (V{"123", "456"}));
  EXPECT_EQ(kimi_split("a\n\nb"), (V{"a", "\n\n", "b"}));
  EXPECT_EQ(kimi_split("漢字abc"), (V{"漢字", "abc"}));
  EXPECT_EQ(kimi_split("abc漢字"), (V{"abc", "漢字"}));
  // U+3002 is Script=Common (Script_Extensions has Han): tiktoken's \p{Han} is Script.
  EXPECT_EQ(kimi_split("你好。世界"), (V{"你好", "。", "世界"}));
  // Hiragana/Katakana are letters but not Han: they form letter runs of their own.
  EXPECT_EQ(kimi_split("日本語のテキスト"), (V{"日本語", "のテキスト"}));
  EXPECT_EQ(kimi_split("x  y"), (V{"x", " ", " y"}));
  EXPECT_EQ(kimi_split("x!?\n"), (V{"x", "!?\n"}));
}

TEST(KimiK2, MatchesPublishedRegexInV8) {
  const bool ci = std::getenv("CI") && std::string(std::getenv("CI")) == "true";
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    if (ci) FAIL() << "CI=true: node is not on PATH (the Kimi K2 split oracle needs it)";
    GTEST_SKIP() << "node is not on PATH";
  }
  const std::string out = std::string(MOE_BINARY_DIR) + "/kimi_oracle.json";
  const std::string cmd = "node " + std::string(MOE_SOURCE_DIR) + "/tests/tokenizer/kimi_oracle.mjs " + out +
                          " > " + out + ".log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "kimi_oracle.mjs failed; see " << out << ".log";
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  const auto j = nlohmann::json::parse(ss.str());
  const auto strings = j.at("strings").get<std::vector<std::string>>();
  const auto pieces = j.at("pieces").get<std::vector<V>>();
  ASSERT_EQ(strings.size(), pieces.size());
  ASSERT_GT(strings.size(), 2000u);
  int bad = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const V got = kimi_split(strings[i]);
    if (got != pieces[i] && ++bad <= 5) {
      std::string g, w;
      for (const auto& p : got) g += "[" + p + "]";
      for (const auto& p : pieces[i]) w += "[" + p + "]";
      ADD_FAILURE() << "string #" << i << "\n  want: " << w << "\n  got:  " << g;
    }
  }
  std::printf("[ kimi-k2 ] %zu strings, %d mismatches\n", strings.size(), bad);
  EXPECT_EQ(bad, 0);
}

}  // namespace
