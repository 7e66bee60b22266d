// logits_compare A REF N_VOCAB TOL: reads two raw little-endian float32 logits files
// [n_tokens, n_vocab] and prints max_row_rel_err (tests/common/compare.h) of A against
// REF; exit 0 when it is <= TOL, 1 otherwise (NaN/Inf, sizes that differ or are not
// whole rows, and unreadable files all fail). Used by dist_test.sh.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "compare.h"

static std::vector<float> read_f32(const char* path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(std::string(path) + ": cannot open");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() % 4 != 0) throw std::runtime_error(std::string(path) + ": size is not a multiple of 4");
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: logits_compare A REF N_VOCAB TOL\n");
    return 2;
  }
  try {
    const std::vector<float> a = read_f32(argv[1]), ref = read_f32(argv[2]);
    const long long n_vocab = std::stoll(argv[3]);
    const double tol = std::stod(argv[4]);
    const double err = moe::test::max_row_rel_err(a, ref, n_vocab);
    std::printf("max_row_rel_err %.3e (tol %.0e, %lld rows)\n", err, tol,
                static_cast<long long>(ref.size()) / n_vocab);
    return err <= tol ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "logits_compare: %s\n", e.what());
    return 1;
  }
}
