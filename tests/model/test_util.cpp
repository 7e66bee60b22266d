// Test helpers (see test_util.h).
#include "test_util.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace moe::test {

std::string temp_dir() {
  static std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moe_test_XXXXXX").string();
    char* d = mkdtemp(tmpl.data());
    std::string s = d ? d : "/tmp";
    static struct Cleanup {
      std::string p;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
      }
    } cleanup{s};
    return s;
  }();
  return dir;
}

std::string synth(const SynthOptions& o, const std::string& name) {
  std::string path = temp_dir() + "/" + name + ".gguf";
  synthesize_model(o, path);
  return path;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> u(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

}  // namespace moe::test
