// The packed (row-interleaved) weight layouts of ops/pack.h against the scalar
// reference: gemm_packed on a packed Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K matrix must equal
// ref::vec_dot_ref (dequantize both sides, sum in double) of the original rows,
// on every compiled kernel path (avx512 VNNI kernels and the portable fallback),
// for 1..8 blocks and n = 2048, 16..96 rows, 1..64 tokens (micro-kernel widths and
// their remainders), row sub-ranges and ldy > rows. Tolerance: max |y - ref| over
// max |ref| <= 1e-5 (the kernels' integer block sums are exact; only the f32
// accumulation of per-block terms rounds). Also: packable() edge cases, packed
// sizes, and results that do not depend on the path that packed the matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "ops/pack.h"
#include "ops/quant.h"
#include "ops/reference/quant_ref.h"
#include "compare.h"  // tests/common: NaN-aware metrics

namespace moe::ops {
namespace {

constexpr double kTol = 1e-5;

// Normal values times a per-32-block magnitude in [0.25, 4), never exactly zero.
std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::uniform_real_distribution<float> mag(0.25f, 4.f);
  std::vector<float> v(n);
  float s = 1.f;
  for (size_t i = 0; i < n; ++i) {
    if (i % 32 == 0) s = mag(rng);
    float x = d(rng);
    if (std::fabs(x) < 1e-3f) x = 1e-3f;
    v[i] = x * s;
  }
  return v;
}

// A rows x n weight matrix of type t, m activation rows, and the reference products.
struct Problem {
  GgmlType type;
  int64_t rows, n, m;
  size_t w_stride, x_stride;
  std::vector<uint8_t> W, X;
  std::vector<double> ref;  // [m, rows]

  Problem(GgmlType t, int64_t rows_, int64_t n_, int64_t m_, uint32_t seed)
      : type(t), rows(rows_), n(n_), m(m_), w_stride(row_bytes(t, n_) + 8),  // padded rows
        x_stride(activation_row_bytes(t, n_) + 4) {
    W.assign(w_stride * rows, 0xCD);
    X.assign(x_stride * m, 0xCD);
    const auto w = random_values(static_cast<size_t>(rows * n), seed);
    const auto x = random_values(static_cast<size_t>(m * n), seed + 1000);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, &w[r * n], &W[r * w_stride], n);
    for (int64_t i = 0; i < m; ++i) ref::quantize_activation_row_ref(t, &x[i * n], &X[i * x_stride], n);
    ref.resize(static_cast<size_t>(m * rows));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < rows; ++r)
        ref[i * rows + r] = ref::vec_dot_ref(t, &W[r * w_stride], &X[i * x_stride], n);
  }

  // Packed copy at a deliberately unaligned address (offset 3 into the buffer).
  std::vector<uint8_t> pack() const {
    std::vector<uint8_t> P(packed_matrix_bytes(type, rows, n) + 3);
    pack_matrix(type, W.data(), w_stride, rows, n, P.data() + 3);
    return P;
  }
};

const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// gemm_packed of rows [r0, r1) for the first m tokens; checks the error against
// the reference and that nothing outside [0, r1 - r0) of each Y row was written.
void check(const Problem& p, const uint8_t* packed, int64_t m, int64_t r0, int64_t r1,
           const std::string& what) {
  const int64_t nr = r1 - r0, ldy = nr + 5;
  constexpr float kSentinel = -12345.f;
  std::vector<float> Y(static_cast<size_t>(m * ldy), kSentinel);
  gemm_packed(p.type, packed, p.rows, p.X.data(), p.x_stride, m, Y.data(), ldy, r0, r1, p.n);
  double err = 0, mx = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < nr; ++r) {
      const double ref = p.ref[i * p.rows + r0 + r];
      err = moe::test::nan_max(err, std::fabs(Y[i * ldy + r] - ref));
      mx = moe::test::nan_max(mx, std::fabs(ref));
    }
    for (int64_t r = nr; r < ldy; ++r) ASSERT_EQ(Y[i * ldy + r], kSentinel) << what << " wrote past r1";
  }
  ASSERT_GT(mx, 0.0) << what;
  EXPECT_LE(err / mx, kTol) << what << " max err " << err << " max |ref| " << mx;
}

TEST(Pack, GemmMatchesReferenceOnEveryPath) {
  const int64_t kMs[] = {1, 2, 3, 5, 8, 9, 17, 64};
  uint32_t seed = 1;
  for (GgmlType t : kTypes) {
    const int64_t bs = traits(t).block_size;
    std::vector<int64_t> ns;
    for (int64_t b = 1; b <= 8; ++b) ns.push_back(b * bs);
    if (bs == 32) ns.push_back(2048);
    for (int64_t n : ns) {
      for (int64_t rows : {16, 32, 48, 96}) {
        // Large shapes only for a few row counts, to keep the test short.
        if (n == 2048 && bs == 32 && rows != 48) continue;
        const Problem p(t, rows, n, 64, seed++);
        const auto P = p.pack();
        for (KernelPath path : available_kernel_paths()) {
          KernelPathGuard g(path);
          for (int64_t m : kMs) {
            const std::string what = std::string(type_name(t)) + " n=" + std::to_string(n) + " rows=" +
                                     std::to_string(rows) + " m=" + std::to_string(m) + " path=" +
                                     kernel_path_name(path);
            check(p, P.data() + 3, m, 0, rows, what);
            if (rows >= 48) check(p, P.data() + 3, m, 16, rows - 16, what + " r0=16");
            if (rows >= 32) check(p, P.data() + 3, m, rows - 16, rows, what + " last tile");
          }
        }
      }
    }
  }
}

// Enough tokens that the kernels split them into several chunks (their activations
// are kept to ~256 KiB per chunk) with ragged token groups.
TEST(Pack, ManyTokensMatchReference) {
  for (GgmlType t : kTypes) {
    const Problem p(t, 32, 2048, 301, 99);
    const auto P = p.pack();
    for (KernelPath path : available_kernel_paths()) {
      KernelPathGuard g(path);
      check(p, P.data() + 3, p.m, 0, p.rows, std::string(type_name(t)) + " m=301 path=" + kernel_path_name(path));
    }
  }
}

// The packed layout is one format: a matrix packed while one path is active gives
// the same products (up to f32 summation order) on every other path.
TEST(Pack, ResultDoesNotDependOnPackingPath) {
  for (GgmlType t : kTypes) {
    const int64_t n = traits(t).block_size == 32 ? 32 * 37 : 256 * 5;
    const Problem p(t, 64, n, 11, 77);
    for (KernelPath pack_path : available_kernel_paths()) {
      std::vector<uint8_t> P;
      {
        KernelPathGuard g(pack_path);
        P = p.pack();
      }
      std::vector<std::vector<float>> results;
      for (KernelPath run_path : available_kernel_paths()) {
        KernelPathGuard g(run_path);
        std::vector<float> Y(static_cast<size_t>(p.m * p.rows));
        gemm_packed(t, P.data() + 3, p.rows, p.X.data(), p.x_stride, p.m, Y.data(), p.rows, 0, p.rows, n);
        results.push_back(Y);
      }
      double mx = 0;
      for (float v : results[0]) mx = moe::test::nan_max(mx, std::fabs(static_cast<double>(v)));
      for (size_t k = 1; k < results.size(); ++k)
        for (size_t i = 0; i < results[0].size(); ++i)
          ASSERT_LE(std::fabs(results[k][i] - results[0][i]), kTol * mx)
              << type_name(t) << " packed under " << kernel_path_name(pack_path) << ", run on path #" << k;
    }
  }
}

// Packing keeps every bit of the original: the packed size equals the original,
// and decode of a packed matrix matches gemv on the unpacked one.
TEST(Pack, PackedSizeAndGemvAgree) {
  for (GgmlType t : kTypes) {
    const int64_t n = traits(t).block_size * 8, rows = 32;
    EXPECT_EQ(packed_matrix_bytes(t, rows, n), row_bytes(t, n) * rows) << type_name(t);
    const Problem p(t, rows, n, 1, 5);
    const auto P = p.pack();
    std::vector<float> y(rows), yp(rows);
    gemv(t, p.W.data(), p.w_stride, p.X.data(), y.data(), 0, rows, n);
    gemm_packed(t, P.data() + 3, rows, p.X.data(), 0, 1, yp.data(), rows, 0, rows, n);
    double mx = 0;
    for (float v : y) mx = moe::test::nan_max(mx, std::fabs(static_cast<double>(v)));
    for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(yp[r], y[r], kTol * mx) << type_name(t) << " row " << r;
  }
}

TEST(Pack, PackableEdgeCases) {
  for (GgmlType t : kTypes) {
    const int64_t bs = traits(t).block_size;
    EXPECT_TRUE(packable(t, 16, bs)) << type_name(t);
    EXPECT_TRUE(packable(t, 4096, 16 * bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 0, bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 8, bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 15, bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 17, bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 40, bs)) << type_name(t);
    EXPECT_FALSE(packable(t, 16, 0)) << type_name(t);
    EXPECT_FALSE(packable(t, 16, bs + 1)) << type_name(t);
    EXPECT_FALSE(packable(t, 16, bs / 2)) << type_name(t);
    EXPECT_FALSE(packable(t, 16, 3 * bs - 16)) << type_name(t);
  }
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_1, GgmlType::Q5_0,
                     GgmlType::Q5_1, GgmlType::MXFP4, GgmlType::Q8_K})
    EXPECT_FALSE(packable(t, 64, 256)) << type_name(t);
}

}  // namespace
}  // namespace moe::ops
