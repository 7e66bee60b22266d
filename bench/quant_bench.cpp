// Microbenchmarks of the weight-type kernels (ops/quant.h) on one thread:
// gemv (one token, 2048 x 2048 weights) and gemm (64 tokens), per type (the low-bit
// types on random blocks). Reports
// weight bytes streamed per second (bytes_per_second) and the kernel used
// (label). MOE_KERNEL=scalar|avx2|avx512 selects the path to measure.
// pack_*: the packed layouts (ops/pack.h) against ops::gemm on the same matrix,
// registered side by side (.../unpacked, .../packed) for A/B ratios in one run:
// gemv from DRAM (GB/s of weights), gemv of 2048 x 2048 weights (L3-resident) and
// gemm with 8 and 64 tokens (GMAC/s).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "ops/pack.h"
#include "ops/quant.h"

namespace {

using moe::GgmlType;

constexpr int64_t kRows = 2048, kCols = 2048;

// The low-bit types of the big MoE releases (decode + dot kernels only, no quantizer).
const GgmlType kLowbitTypes[] = {GgmlType::Q2_K,    GgmlType::Q3_K,   GgmlType::IQ4_XS, GgmlType::IQ4_NL,
                                 GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,  GgmlType::IQ3_XXS,
                                 GgmlType::IQ3_S,   GgmlType::IQ1_S,  GgmlType::IQ1_M,  GgmlType::TQ1_0,
                                 GgmlType::TQ2_0};
bool is_lowbit(GgmlType t) {
  for (GgmlType l : kLowbitTypes)
    if (l == t) return true;
  return false;
}

struct Setup {
  std::vector<uint8_t> W, X;
  size_t w_stride, x_stride;
  Setup(GgmlType t, int64_t m)
      : w_stride(moe::row_bytes(t, kCols)), x_stride(moe::ops::activation_row_bytes(t, kCols)) {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.f, 1.f);
    std::vector<float> row(kCols);
    W.resize(w_stride * kRows);
    X.resize(x_stride * m);
    if (is_lowbit(t)) {  // no quantizer yet: random blocks (the kernels' speed does not depend on the bits)
      for (auto& b : W) b = static_cast<uint8_t>(rng());
    } else {
      for (int64_t r = 0; r < kRows; ++r) {
        for (auto& v : row) v = dist(rng);
        moe::ops::quantize_row(t, row.data(), &W[r * w_stride], kCols);
      }
    }
    for (int64_t i = 0; i < m; ++i) {
      for (auto& v : row) v = dist(rng);
      moe::ops::quantize_activation_row(t, row.data(), &X[i * x_stride], kCols);
    }
  }
};

void bm_gemv(benchmark::State& state, GgmlType t) {
  Setup s(t, 1);
  std::vector<float> y(kRows);
  for (auto _ : state) {
    moe::ops::gemv(t, s.W.data(), s.w_stride, s.X.data(), y.data(), 0, kRows, kCols);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(s.W.size()));
  state.SetLabel(moe::ops::kernel_name(t));
}

void bm_gemm64(benchmark::State& state, GgmlType t) {
  constexpr int64_t m = 64;
  Setup s(t, m);
  std::vector<float> Y(m * kRows);
  for (auto _ : state) {
    moe::ops::gemm(t, s.W.data(), s.w_stride, s.X.data(), s.x_stride, m, Y.data(), kRows, 0,
                   kRows, kCols);
    benchmark::DoNotOptimize(Y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(s.W.size()));
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * m * kRows * kCols / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(moe::ops::kernel_name(t));
}

// gemv over a weight matrix far larger than the LLC (rows x 2048 sized to ~256 MB
// of weights): the DRAM-streaming speed that decode sees. Rows are filled by
// copying one quantized 2048 x 2048 tile (the kernel does not care about values).
void bm_gemv_dram(benchmark::State& state, GgmlType t) {
  Setup s(t, 1);
  const size_t tile = s.W.size();
  const size_t reps = (256u << 20) / tile;
  std::vector<uint8_t> W(tile * reps);
  for (size_t i = 0; i < reps; ++i) std::copy(s.W.begin(), s.W.end(), W.begin() + i * tile);
  const int64_t rows = kRows * static_cast<int64_t>(reps);
  std::vector<float> y(rows);
  for (auto _ : state) {
    moe::ops::gemv(t, W.data(), s.w_stride, s.X.data(), y.data(), 0, rows, kCols);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(W.size()));
  state.SetLabel(moe::ops::kernel_name(t));
}

// Packed vs unpacked, same weights and activations. gemv: the ~256 MB matrix of
// bm_gemv_dram; gemm: 2048 x 2048 weights and m tokens.
struct PackSetup {
  std::vector<uint8_t> W, P;
  int64_t rows;
  Setup s;
  PackSetup(GgmlType t, int64_t m, bool dram) : s(t, m) {
    const size_t tile = s.W.size();
    const size_t reps = dram ? (256u << 20) / tile : 1;
    rows = kRows * static_cast<int64_t>(reps);
    W.resize(tile * reps);
    for (size_t i = 0; i < reps; ++i) std::copy(s.W.begin(), s.W.end(), W.begin() + i * tile);
    P.resize(moe::ops::packed_matrix_bytes(t, rows, kCols));
    moe::ops::pack_matrix(t, W.data(), s.w_stride, rows, kCols, P.data());
  }
  void run(GgmlType t, bool packed, int64_t m, float* Y) const {
    if (packed)
      moe::ops::gemm_packed(t, P.data(), rows, s.X.data(), s.x_stride, m, Y, rows, 0, rows, kCols);
    else
      moe::ops::gemm(t, W.data(), s.w_stride, s.X.data(), s.x_stride, m, Y, rows, 0, rows, kCols);
  }
};

// m tokens against the 2048 x 2048 matrix (dram = false: it stays in L3) or the
// ~256 MB one (dram = true): decode (m = 1), the server's small batches (m = 2..8:
// the tokens of one expert, or the lm_head of a batched step) and prefill (m = 64).
void bm_pack_gemm(benchmark::State& state, GgmlType t, int64_t m, bool packed, bool dram) {
  const PackSetup p(t, m, dram);
  std::vector<float> Y(m * p.rows);
  for (auto _ : state) {
    p.run(t, packed, m, Y.data());
    benchmark::DoNotOptimize(Y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(p.W.size()));
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * m * p.rows * kCols / 1e9, benchmark::Counter::kIsRate);
}

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                           GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                           GgmlType::MXFP4, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

const bool kRegistered = [] {
  for (GgmlType t : kTypes) {
    const std::string name(moe::type_name(t));
    benchmark::RegisterBenchmark(("quant_gemv_2048/" + name).c_str(), bm_gemv, t);
    benchmark::RegisterBenchmark(("quant_gemm64_2048/" + name).c_str(), bm_gemm64, t);
    benchmark::RegisterBenchmark(("quant_gemv_dram/" + name).c_str(), bm_gemv_dram, t)->Iterations(8);
  }
  for (GgmlType t : kLowbitTypes) {
    const std::string name(moe::type_name(t));
    benchmark::RegisterBenchmark(("quant_gemv_2048/" + name).c_str(), bm_gemv, t);
    benchmark::RegisterBenchmark(("quant_gemm64_2048/" + name).c_str(), bm_gemm64, t);
  }
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::string name(moe::type_name(t));
    for (bool packed : {false, true}) {
      const std::string mode = packed ? "/packed" : "/unpacked";
      benchmark::RegisterBenchmark(("pack_gemv_dram/" + name + mode).c_str(), bm_pack_gemm, t, 1, packed, true)
          ->Iterations(8);
      for (int64_t m : {2, 4, 8})
        benchmark::RegisterBenchmark(("pack_gemm" + std::to_string(m) + "_dram/" + name + mode).c_str(),
                                     bm_pack_gemm, t, m, packed, true)
            ->Iterations(8);
      benchmark::RegisterBenchmark(("pack_gemv_2048/" + name + mode).c_str(), bm_pack_gemm, t, 1, packed, false);
      for (int64_t m : {8, 64})
        benchmark::RegisterBenchmark(("pack_gemm" + std::to_string(m) + "_2048/" + name + mode).c_str(),
                                     bm_pack_gemm, t, m, packed, false);
    }
  }
  return true;
}();

}  // namespace
