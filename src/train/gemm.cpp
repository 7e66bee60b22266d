// The float matrix kernel of training: C[M,K] (+)= A[M,N] . B[N,K], written as
// row-block axpys that the compiler vectorises; compiled for AVX2+FMA and for
// the baseline, picked at load time (target_clones). Work items are (row block,
// column block) tiles, each summed over n in order: thread-count independent.
#include <algorithm>
#include <cstring>

#include "train/ops.h"

namespace moe::train {
namespace {

__attribute__((target_clones("avx2,fma", "default")))
void tile(const float* __restrict A, const float* __restrict B, float* __restrict C, int64_t m0,
          int64_t m1, int64_t N, int64_t K, int64_t k0, int64_t k1, bool accumulate) {
  const int64_t w = k1 - k0;
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) {
    float* c0 = C + (m + 0) * K + k0;
    float* c1 = C + (m + 1) * K + k0;
    float* c2 = C + (m + 2) * K + k0;
    float* c3 = C + (m + 3) * K + k0;
    if (!accumulate) {
      std::memset(c0, 0, w * 4);
      std::memset(c1, 0, w * 4);
      std::memset(c2, 0, w * 4);
      std::memset(c3, 0, w * 4);
    }
    const float* a0 = A + (m + 0) * N;
    const float* a1 = A + (m + 1) * N;
    const float* a2 = A + (m + 2) * N;
    const float* a3 = A + (m + 3) * N;
    for (int64_t n = 0; n < N; ++n) {
      const float* b = B + n * K + k0;
      const float x0 = a0[n], x1 = a1[n], x2 = a2[n], x3 = a3[n];
      for (int64_t k = 0; k < w; ++k) {
        const float bk = b[k];
        c0[k] += x0 * bk;
        c1[k] += x1 * bk;
        c2[k] += x2 * bk;
        c3[k] += x3 * bk;
      }
    }
  }
  for (; m < m1; ++m) {
    float* c = C + m * K + k0;
    if (!accumulate) std::memset(c, 0, w * 4);
    const float* a = A + m * N;
    for (int64_t n = 0; n < N; ++n) {
      const float* b = B + n * K + k0;
      const float x = a[n];
      for (int64_t k = 0; k < w; ++k) c[k] += x * b[k];
    }
  }
}

}  // namespace

void gemm_nn_f32(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K,
                 bool accumulate, ThreadPool* pool) {
  if (M == 0 || K == 0) return;
  constexpr int64_t kb = 256, mb = 32;
  const int64_t nk = (K + kb - 1) / kb, nm = (M + mb - 1) / mb;
  auto run = [&](int64_t item) {
    const int64_t bm = item / nk, bk = item % nk;
    tile(A, B, C, bm * mb, std::min(M, (bm + 1) * mb), N, K, bk * kb, std::min(K, (bk + 1) * kb),
         accumulate);
  };
  if (pool && nm * nk > 1) {
    pool->parallel_for(nm * nk, [&](int64_t i, int) { run(i); });
  } else {
    for (int64_t i = 0; i < nm * nk; ++i) run(i);
  }
}

}  // namespace moe::train
