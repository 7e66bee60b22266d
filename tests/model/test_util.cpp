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

double max_row_rel_err(std::span<const float> a, std::span<const float> ref, int64_t n_cols) {
  double worst = 0;
  for (size_t r = 0; r * n_cols < ref.size(); ++r) {
    double md = 0, mr = 0;
    for (int64_t j = 0; j < n_cols; ++j) {
      md = std::max(md, std::abs(double(a[r * n_cols + j]) - ref[r * n_cols + j]));
      mr = std::max(mr, std::abs(double(ref[r * n_cols + j])));
    }
    worst = std::max(worst, std::isnan(md) ? INFINITY : md / mr);
  }
  return worst;
}

double rel_l2(std::span<const float> a, std::span<const float> ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return std::sqrt(d / r);
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> u(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

}  // namespace moe::test
