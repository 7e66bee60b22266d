// The low-bit weight types (Q2_K, Q3_K, TQ1_0, TQ2_0, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
// IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS) on every compiled kernel path:
//  - the lookup grids keep the invariants of the format (sorted, value sets);
//  - the kernels' integer unpackers decode exactly what the float reference decoders do;
//  - vec_dot / gemv / gemm against the plain float reference (both sides dequantized
//    to float, summed in double: ref::vec_dot_ref) on random blocks, awkward sizes
//    (1, 3, 5 blocks; rows and tokens that are not tile multiples).
// Random blocks are random bytes with the fp16 scale fields replaced by finite values
// of both signs, so every bit pattern of the quant fields is exercised.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "gguf/types.h"
#include "ops/cpu/quant_lowbit.h"
#include "ops/quant.h"
#include "ops/reference/iq_grids.h"
#include "ops/reference/quant_ref.h"

namespace moe::ops {
namespace {

const GgmlType kLowbit[] = {GgmlType::Q2_K,   GgmlType::Q3_K,    GgmlType::TQ1_0,  GgmlType::TQ2_0,
                            GgmlType::IQ1_S,  GgmlType::IQ1_M,   GgmlType::IQ2_XXS, GgmlType::IQ2_XS,
                            GgmlType::IQ2_S,  GgmlType::IQ3_XXS, GgmlType::IQ3_S,  GgmlType::IQ4_NL,
                            GgmlType::IQ4_XS};

// Byte offsets of the fp16 scale fields inside one block.
std::vector<size_t> fp16_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return {80, 82};
    case GgmlType::Q3_K: return {108};
    case GgmlType::TQ1_0: return {52};
    case GgmlType::TQ2_0: return {64};
    case GgmlType::IQ1_M: return {};  // d is spread over the scales' top nibbles
    default: return {0};
  }
}

// n_blocks random blocks of type t with finite scales.
std::vector<uint8_t> random_blocks(GgmlType t, int64_t n_blocks, std::mt19937& rng) {
  const size_t bs = traits(t).type_size;
  std::vector<uint8_t> v(bs * static_cast<size_t>(n_blocks));
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> mag(0.002f, 0.05f);
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* blk = v.data() + bs * static_cast<size_t>(i);
    for (size_t off : fp16_fields(t)) {
      const uint16_t h = f32_to_fp16(rng() % 2 ? mag(rng) : -mag(rng));
      std::memcpy(blk + off, &h, 2);
    }
    if (t == GgmlType::IQ1_M) {  // four u16 at 48..55, bits 12..15 = nibbles of the fp16 d
      const uint16_t h = f32_to_fp16(rng() % 2 ? mag(rng) : -mag(rng));
      for (int k = 0; k < 4; ++k) {
        uint8_t& hi = blk[48 + 2 * k + 1];
        hi = static_cast<uint8_t>((hi & 0x0F) | ((h >> (4 * k)) & 15) << 4);
      }
    }
  }
  return v;
}

std::vector<float> normal(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <class T>
bool sorted_unique(const T* p, size_t n) {
  for (size_t i = 1; i < n; ++i)
    if (!(p[i - 1] < p[i])) return false;
  return true;
}
template <class T>
bool bytes_in(const T* p, size_t n, std::vector<int> allowed) {
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < sizeof(T); ++j) {
      const int b = static_cast<int>((static_cast<uint64_t>(p[i]) >> (8 * j)) & 255);
      if (std::find(allowed.begin(), allowed.end(), b) == allowed.end()) return false;
    }
  return true;
}

TEST(IqGrids, FormatInvariants) {
  EXPECT_TRUE(sorted_unique(kIq2xxsGrid, 256));
  EXPECT_TRUE(sorted_unique(kIq2xsGrid, 512));
  EXPECT_TRUE(sorted_unique(kIq2sGrid, 1024));
  EXPECT_TRUE(sorted_unique(kIq3xxsGrid, 256));
  EXPECT_TRUE(sorted_unique(kIq3sGrid, 512));
  EXPECT_TRUE(bytes_in(kIq2xxsGrid, 256, {8, 25, 43}));
  EXPECT_TRUE(bytes_in(kIq2xsGrid, 512, {8, 25, 43}));
  EXPECT_TRUE(bytes_in(kIq2sGrid, 1024, {8, 25, 43}));
  EXPECT_TRUE(bytes_in(kIq3xxsGrid, 256, {4, 12, 20, 28, 36, 44, 52, 62}));
  EXPECT_TRUE(bytes_in(kIq3sGrid, 512, {1, 3, 5, 7, 9, 11, 13, 15}));
  EXPECT_TRUE(bytes_in(kIq1sGrid, 2048, {0xFF, 0, 1}));
  // IQ1 grid: sorted as 8 signed digits, most significant byte first; all distinct.
  auto key = [](uint64_t e) {
    std::array<int, 8> k{};
    for (int j = 0; j < 8; ++j) k[j] = static_cast<int8_t>(e >> (8 * (7 - j)));
    return k;
  };
  for (int i = 1; i < 2048; ++i) ASSERT_LT(key(kIq1sGrid[i - 1]), key(kIq1sGrid[i])) << i;
  // Spot values of the format (first and last entries).
  EXPECT_EQ(kIq2xxsGrid[255], 0x2b2b2b1908081908u);
  EXPECT_EQ(kIq3sGrid[511], 0x0f0f0101u);
  EXPECT_EQ(kIq1sGrid[0], 0xffffffffffffffffu);
  EXPECT_EQ(kIq1sGrid[2047], 0x0101010101010101u);
  EXPECT_EQ(iq_signs8(1), 129);
  EXPECT_EQ(iq_signs8(3), 3);
}

class LowbitTypeTest : public ::testing::TestWithParam<GgmlType> {};

// Unpacked integer form == float reference decoding, element by element.
TEST_P(LowbitTypeTest, UnpackMatchesReferenceDecoder) {
  const GgmlType t = GetParam();
  const cpu::LowbitUnpackFn unpack = cpu::lowbit_unpacker(t);
  ASSERT_NE(unpack, nullptr);
  std::mt19937 rng(7);
  const auto blocks = random_blocks(t, 64, rng);
  std::vector<float> ref(256);
  for (int64_t i = 0; i < 64; ++i) {
    const uint8_t* blk = blocks.data() + traits(t).type_size * static_cast<size_t>(i);
    ref::dequantize_row_ref(t, blk, ref.data(), 256);
    cpu::LowbitBlock u;
    unpack(blk, u);
    double amax = 0;
    for (float v : ref) amax = std::max(amax, std::fabs(static_cast<double>(v)));
    for (int e = 0; e < 256; ++e) {
      const double x = static_cast<double>(u.d) * u.sc[e / 16] * u.w[e] - static_cast<double>(u.dmin) * u.mn[e / 16];
      ASSERT_TRUE(std::isfinite(ref[e]));
      ASSERT_NEAR(x, ref[e], 1e-6 * amax + 1e-30) << "block " << i << " element " << e;
    }
  }
}

// Problem: rows x n weights of random blocks, m activation rows rounded by the reference.
struct Problem {
  int64_t rows, m, n;
  size_t w_stride, x_stride;
  std::vector<uint8_t> W, X;
  std::vector<double> ref, absref;  // [m, rows]
};

Problem make_problem(GgmlType t, int64_t rows, int64_t m, int64_t n, uint32_t seed) {
  Problem p{rows, m, n, row_bytes(t, n), activation_row_bytes(t, n), {}, {}, {}, {}};
  std::mt19937 rng(seed);
  p.W = random_blocks(t, rows * (n / traits(t).block_size), rng);
  p.X.resize(p.x_stride * static_cast<size_t>(m));
  const auto x = normal(static_cast<size_t>(m * n), seed + 1, 2.f);
  for (int64_t i = 0; i < m; ++i) ref::quantize_activation_row_ref(t, &x[i * n], &p.X[i * p.x_stride], n);
  std::vector<float> wd(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    ref::dequantize_row_ref(vec_dot_type(t), &p.X[i * p.x_stride], xd.data(), n);
    for (int64_t r = 0; r < rows; ++r) {
      p.ref.push_back(ref::vec_dot_ref(t, &p.W[r * p.w_stride], &p.X[i * p.x_stride], n));
      ref::dequantize_row_ref(t, &p.W[r * p.w_stride], wd.data(), n);
      double a = 0;
      for (int64_t k = 0; k < n; ++k) a += std::fabs(static_cast<double>(wd[k]) * xd[k]);
      p.absref.push_back(a);
    }
  }
  return p;
}

// ||out - ref|| / ||absref||; fails (returns +inf) on NaN or a size mismatch.
double rel_err(const std::vector<double>& out, const Problem& p) {
  if (out.size() != p.ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    num += (out[i] - p.ref[i]) * (out[i] - p.ref[i]);
    den += p.absref[i] * p.absref[i];
  }
  return std::sqrt(num / den);
}

constexpr double kTol = 2e-6;  // integer block sums are exact; f32 rounding of block terms

std::vector<int64_t> sizes(GgmlType t) {
  return traits(t).block_size == 256 ? std::vector<int64_t>{256, 768, 1280} : std::vector<int64_t>{32, 96, 224, 1024};
}

struct Case {
  GgmlType type;
  KernelPath path;
};
class LowbitKernelTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { set_kernel_override(GetParam().path); }
  void TearDown() override { set_kernel_override(std::nullopt); }
};

TEST_P(LowbitKernelTest, VecDotMatchesFloatReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t)) {
    Problem p = make_problem(t, 5, 1, n, 11);
    std::vector<double> out;
    for (int64_t r = 0; r < p.rows; ++r) out.push_back(vec_dot(t, &p.W[r * p.w_stride], p.X.data(), n));
    EXPECT_LT(rel_err(out, p), kTol) << "n=" << n;
  }
}

TEST_P(LowbitKernelTest, GemvMatchesFloatReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t))
    for (int64_t rows : {1, 7, 33}) {
      Problem p = make_problem(t, rows, 1, n, 21 + static_cast<uint32_t>(rows));
      std::vector<float> y(static_cast<size_t>(rows) + 1, -7.f);
      gemv(t, p.W.data(), p.w_stride, p.X.data(), y.data(), 0, rows, n);
      EXPECT_EQ(y[rows], -7.f) << "gemv wrote past r1 - r0";
      EXPECT_LT(rel_err({y.begin(), y.begin() + rows}, p), kTol) << "n=" << n << " rows=" << rows;
    }
}

TEST_P(LowbitKernelTest, GemmMatchesFloatReference) {
  const GgmlType t = GetParam().type;
  for (int64_t n : sizes(t))
    for (int64_t rows : {1, 7, 33})
      for (int64_t m : {1, 3, 5, 17}) {
        Problem p = make_problem(t, rows, m, n, 31 + static_cast<uint32_t>(rows * m));
        const int64_t ldy = rows + 3;
        std::vector<float> Y(static_cast<size_t>(m * ldy), -7.f);
        gemm(t, p.W.data(), p.w_stride, p.X.data(), p.x_stride, m, Y.data(), ldy, 0, rows, n);
        std::vector<double> out;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < rows; ++r) out.push_back(Y[i * ldy + r]);
          for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(Y[i * ldy + r], -7.f);
        }
        EXPECT_LT(rel_err(out, p), kTol) << "n=" << n << " rows=" << rows << " m=" << m;
      }
}

// Every low-bit type has a SIMD kernel on the avx2 and avx512 paths.
TEST_P(LowbitKernelTest, KernelNameMatchesPath) {
  const std::string name = kernel_name(GetParam().type);
  switch (GetParam().path) {
    case KernelPath::scalar: EXPECT_EQ(name, "scalar"); break;
    case KernelPath::avx2: EXPECT_EQ(name, "avx2"); break;
    case KernelPath::avx512: EXPECT_EQ(name, "avx512_vnni"); break;
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (auto p : available_kernel_paths())
    for (auto t : kLowbit) v.push_back({t, p});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, LowbitKernelTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(type_name(info.param.type)) + "_" + kernel_path_name(info.param.path);
                         });
// IQ4_NL (32-blocks) has its own kernels and no unpacker into the 256-block form.
TEST(LowbitUnpack, OnlyFor256Blocks) { EXPECT_EQ(cpu::lowbit_unpacker(GgmlType::IQ4_NL), nullptr); }

std::vector<GgmlType> blocks256() {
  std::vector<GgmlType> v;
  for (GgmlType t : kLowbit)
    if (traits(t).block_size == 256) v.push_back(t);
  return v;
}
INSTANTIATE_TEST_SUITE_P(AllTypes, LowbitTypeTest, ::testing::ValuesIn(blocks256()),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(type_name(info.param));
                         });

}  // namespace
}  // namespace moe::ops
