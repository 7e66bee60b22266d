// Renders chat templates (Qwen3, DeepSeek-V3, Llama-3, Llama-2, Mixtral and,
// when MOE_GPT_OSS_TEMPLATE names its file, gpt-oss) with our Jinja subset and
// compares byte for byte with @huggingface/jinja (chat_oracle.mjs). Cases the
// reference rejects must be rejected by us too. Skips without node.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "oracle.h"  // tests/common: MOE_REQUIRE_ORACLE (a failure under CI=true)

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

const std::string kSrc = MOE_SOURCE_DIR;
const std::string kOut = MOE_BINARY_DIR "/chat_oracle";

size_t first_diff(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

TEST(ChatOracle, TemplatesMatchHuggingFaceJinja) {
  MOE_REQUIRE_ORACLE(fs::exists(kSrc + "/node_modules/@huggingface/jinja"),
                     "node_modules/@huggingface/jinja (npm ci at the repo root)");
  MOE_REQUIRE_ORACLE(std::system("node --version > /dev/null 2>&1") == 0, "node on PATH");
  fs::create_directories(kOut);
  std::string cmd = "node " + kSrc + "/tests/tokenizer/chat_oracle.mjs " + kOut + " > " + kOut + ".log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "chat_oracle.mjs failed; see " << kOut << ".log";
  std::ifstream f(kOut + "/chat_cases.json");
  std::stringstream ss;
  ss << f.rdbuf();
  ordered_json cases = ordered_json::parse(ss.str());
  ASSERT_FALSE(cases.empty());
  std::map<std::string, std::pair<int, int>> per_template;  // cases, mismatches
  for (const auto& c : cases) {
    std::string tname = c["template"].get<std::string>();
    std::string label = tname + "/" + c["case"].get<std::string>();
    auto& stat = per_template[tname];
    ++stat.first;
    std::string got, err;
    try {
      got = moe::render_chat(c["src"].get<std::string>(), c["messages"], c["add_generation_prompt"].get<bool>(), c["extra"]);
    } catch (const moe::Error& e) {
      err = e.what();
    }
    if (!c["error"].is_null()) {
      if (err.empty()) { ++stat.second; ADD_FAILURE() << label << ": reference raised '" << c["error"] << "' but we rendered"; }
      continue;
    }
    std::string want = c["expected"].get<std::string>();
    if (!err.empty()) {
      ++stat.second;
      ADD_FAILURE() << label << ": " << err;
    } else if (got != want) {
      ++stat.second;
      size_t d = first_diff(got, want);
      size_t from = d > 40 ? d - 40 : 0;
      ADD_FAILURE() << label << ": differs at byte " << d << "\n  want: ..." << want.substr(from, 120) << "\n  got:  ..."
                    << got.substr(from, 120);
    }
  }
  for (const auto& [t, s] : per_template) std::printf("[ chat ] %s: %d cases, %d mismatches\n", t.c_str(), s.first, s.second);
}

}  // namespace
