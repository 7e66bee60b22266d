// Training ops with hand-written backward passes, templated on the scalar type:
// float for training, double for the finite-difference gradient checks. All
// tensors are row-major [rows, cols] (the last index is contiguous), weights are
// [n_out, n_in] exactly as GGUF stores them. Every parallel loop partitions its
// output so that each value is summed in one fixed order: results do not depend
// on the number of threads. pool may be null (serial, e.g. inside expert items).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "base/thread_pool.h"

namespace moe::train {

// The f32 matrix kernel (gemm.cpp): C[i*ldc + j] (+)= sum_k A[i*ars + k*acs] * B[k*brs + j*bcs]
// for i < M, j < N, k < K. Each element is one fused multiply-add chain over k in
// order, so results do not depend on the thread count.
void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
           int64_t brs, int64_t bcs, float* C, int64_t ldc, bool accumulate, ThreadPool* pool);

// The same in two parts, to pack an operand once and use it for several products:
// sgemm_pack_b writes op(B) (K x N) into bpack (sgemm_packed_b_size(K, N) floats);
// sgemm_prepacked multiplies by it, where op(B)'s row k of column panel p is at
// bpack + p * panel_stride + k * NR (panel_stride = K_packed * NR: a product may use
// the first N columns and K rows from any row offset of a larger packed matrix:
// pass bpack + k_offset * sgemm_panel_width()).
int64_t sgemm_packed_b_size(int64_t K, int64_t N);
// For tests: use the best micro-kernel at most `level` (0 portable 4x8, 1 AVX2+FMA
// 6x16, 2 AVX-512 8x32; the default is the best the CPU runs). Returns the level
// selected. Not thread-safe: call it while no product is running.
int sgemm_select_kernel(int level);
int64_t sgemm_panel_width();
void sgemm_pack_b(int64_t K, int64_t N, const float* B, int64_t brs, int64_t bcs, float* bpack,
                  ThreadPool* pool);
void sgemm_prepacked(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs,
                     const float* bpack, int64_t panel_stride, float* C, int64_t ldc, bool accumulate,
                     ThreadPool* pool);

// C[M,K] (+)= A[M,N] . B[N,K]
template <typename T>
void gemm_nn(const T* A, const T* B, T* C, int64_t M, int64_t N, int64_t K, bool accumulate,
             ThreadPool* pool) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(M, K, N, A, N, 1, B, K, 1, C, K, accumulate, pool);
  } else {
    auto rows = [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        T* c = C + m * K;
        if (!accumulate) std::fill(c, c + K, T(0));
        for (int64_t n = 0; n < N; ++n) {
          const T a = A[m * N + n];
          const T* b = B + n * K;
          for (int64_t k = 0; k < K; ++k) c[k] += a * b[k];
        }
      }
    };
    if (pool) {
      pool->parallel_for(M, [&](int64_t m, int) { rows(m, m + 1); });
    } else {
      rows(0, M);
    }
  }
}

// C[M,N] (+)= A[M,K] . B[N,K]^T   (forward of a linear layer: Y = X W^T)
template <typename T>
void gemm_nt(const T* A, const T* B, T* C, int64_t M, int64_t N, int64_t K, bool accumulate,
             ThreadPool* pool) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(M, N, K, A, K, 1, B, 1, K, C, N, accumulate, pool);
  } else {
    std::vector<T> bt(N * K);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) bt[k * N + n] = B[n * K + k];
    gemm_nn(A, bt.data(), C, M, K, N, accumulate, pool);
  }
}

// C[N,K] (+)= A[M,N]^T . B[M,K]   (weight gradient: dW += dY^T X)
template <typename T>
void gemm_tn(const T* A, const T* B, T* C, int64_t M, int64_t N, int64_t K, bool accumulate,
             ThreadPool* pool) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(N, K, M, A, 1, N, B, K, 1, C, K, accumulate, pool);
  } else {
    std::vector<T> at(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) at[n * M + m] = A[m * N + n];
    gemm_nn(at.data(), B, C, N, M, K, accumulate, pool);
  }
}

// fn(i) for i < n; on the pool in contiguous chunks of about n / (8 threads) items
// (each i is independent, so the chunking does not change results).
template <typename T>
void for_rows(ThreadPool* pool, int64_t n, const auto& fn) {
  if (pool && pool->size() > 1 && n > 1) {
    const int64_t chunk = std::max<int64_t>(1, n / (8 * pool->size()));
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    pool->parallel_for(n_chunks, [&](int64_t c, int) {
      for (int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) fn(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

// fn(e, pp) for the experts e < X that have rows (off[e + 1] > off[e]). Experts are
// items of one parallel loop (pp = nullptr: serial kernels inside), except those with
// more than a quarter of all rows per thread (routing can be that uneven): they run one
// after the other first, each with pp = pool for parallel kernels. Every kernel gives
// the same bits with or without a pool, so the split does not change results.
template <typename T>
void for_experts(ThreadPool* pool, int64_t X, const std::vector<int64_t>& off, const auto& fn) {
  const int64_t total = off[X], threads = pool ? pool->size() : 1;
  std::vector<int64_t> small;
  for (int64_t e = 0; e < X; ++e) {
    const int64_t n = off[e + 1] - off[e];
    if (n == 0) continue;
    if (threads > 1 && n * 4 * threads > total * 2) fn(e, pool);
    else small.push_back(e);
  }
  for_rows<T>(pool, static_cast<int64_t>(small.size()), [&](int64_t i) { fn(small[i], nullptr); });
}

// ---- RMSNorm of one row: y = x * r * w, r = 1 / sqrt(mean(x^2) + eps). Returns r.
template <typename T>
T rms_norm_fwd(const T* x, const T* w, T* y, int64_t n, T eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const T r = static_cast<T>(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
  return r;
}
// dx (+)= r * dy*w - x * r^3 / n * sum(dy*w*x);  dw += dy * x * r (dw may be null)
template <typename T>
void rms_norm_bwd(const T* x, const T* w, T r, const T* dy, T* dx, T* dw, int64_t n, bool accumulate) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(dy[i]) * double(w[i]) * double(x[i]);
  const T c = static_cast<T>(s * double(r) * double(r) * double(r) / double(n));
  for (int64_t i = 0; i < n; ++i) {
    const T v = r * dy[i] * w[i] - x[i] * c;
    dx[i] = accumulate ? dx[i] + v : v;
  }
  if (dw)
    for (int64_t i = 0; i < n; ++i) dw[i] += dy[i] * x[i] * r;
}

// ---- RoPE (NEOX pairs i, i + n/2) with a [n/2] (cos, sin) table; backward rotates back.
template <typename T>
void rope_fwd(T* x, const float* cs, int64_t n, bool inverse) {
  const int64_t h = n / 2;
  for (int64_t i = 0; i < h; ++i) {
    const T c = cs[2 * i], s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
    const T a = x[i], b = x[i + h];
    x[i] = a * c - b * s;
    x[i + h] = a * s + b * c;
  }
}

// ---- SwiGLU: a = silu(g) * u
template <typename T>
T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T>
void swiglu_fwd_scalar(const T* g, const T* u, T* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] * sigmoid(g[i]) * u[i];
}
template <typename T>
void swiglu_bwd_scalar(const T* g, const T* u, const T* da, T* dg, T* du, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(g[i]);
    du[i] = da[i] * g[i] * s;
    dg[i] = da[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
  }
}

// ---- softmax of one row (in place); backward dx = p * (dp - sum(p * dp)). Returns logsumexp.
template <typename T>
T softmax_fwd_scalar(T* x, int64_t n) {
  T mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const T inv = static_cast<T>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  return mx + static_cast<T>(std::log(sum));
}

// float32: AVX-512 versions where available (vecmath.cpp)
float softmax_fwd_f32(float* x, int64_t n);
void swiglu_fwd_f32(const float* g, const float* u, float* a, int64_t n);
void swiglu_bwd_f32(const float* g, const float* u, const float* da, float* dg, float* du, int64_t n);

template <typename T>
void swiglu_fwd(const T* g, const T* u, T* a, int64_t n) {
  if constexpr (std::is_same_v<T, float>) swiglu_fwd_f32(g, u, a, n);
  else swiglu_fwd_scalar(g, u, a, n);
}
template <typename T>
void swiglu_bwd(const T* g, const T* u, const T* da, T* dg, T* du, int64_t n) {
  if constexpr (std::is_same_v<T, float>) swiglu_bwd_f32(g, u, da, dg, du, n);
  else swiglu_bwd_scalar(g, u, da, dg, du, n);
}
template <typename T>
T softmax_fwd(T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) return softmax_fwd_f32(x, n);
  else return softmax_fwd_scalar(x, n);
}
template <typename T>
void softmax_bwd(const T* p, const T* dp, T* dx, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(p[i]) * double(dp[i]);
  for (int64_t i = 0; i < n; ++i) dx[i] = p[i] * (dp[i] - static_cast<T>(s));
}

// float32 versions on sgemm (attention.cpp); P is written in full (0 above the diagonal)
void attention_fwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       float* P, float* o, int64_t ldo, int64_t S, int64_t D, float scale);
void attention_bwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       const float* P, const float* dO, int64_t ldo, float* dq, float* dk, float* dv,
                       int64_t S, int64_t D, float scale);

// ---- causal attention of one (sequence, head): q [S, ldq], k/v [S, ldk] (head offset applied
// by the caller), P [S, S] saved probabilities, o [S, ldo].
template <typename T>
void attention_fwd(const T* q, int64_t ldq, const T* k, const T* v, int64_t ldk, T* P, T* o,
                   int64_t ldo, int64_t S, int64_t D, T scale) {
  if constexpr (std::is_same_v<T, float>) {
    attention_fwd_f32(q, ldq, k, v, ldk, P, o, ldo, S, D, scale);
    return;
  }
  for (int64_t i = 0; i < S; ++i) {
    T* p = P + i * S;
    for (int64_t j = 0; j <= i; ++j) {
      T s = 0;
      for (int64_t d = 0; d < D; ++d) s += q[i * ldq + d] * k[j * ldk + d];
      p[j] = s * scale;
    }
    softmax_fwd(p, i + 1);
    T* oi = o + i * ldo;
    std::fill(oi, oi + D, T(0));
    for (int64_t j = 0; j <= i; ++j)
      for (int64_t d = 0; d < D; ++d) oi[d] += p[j] * v[j * ldk + d];
  }
}
// dq = (written), dk/dv (accumulated: kv heads are shared by a group of query heads).
template <typename T>
void attention_bwd(const T* q, int64_t ldq, const T* k, const T* v, int64_t ldk, const T* P,
                   const T* dO, int64_t ldo, T* dq, T* dk, T* dv, int64_t S, int64_t D, T scale,
                   T* tmp /* [S] */) {
  if constexpr (std::is_same_v<T, float>) {
    attention_bwd_f32(q, ldq, k, v, ldk, P, dO, ldo, dq, dk, dv, S, D, scale);
    return;
  }
  for (int64_t i = 0; i < S; ++i) {
    const T* p = P + i * S;
    const T* doi = dO + i * ldo;
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      T dp = 0;
      for (int64_t d = 0; d < D; ++d) dp += doi[d] * v[j * ldk + d];
      tmp[j] = dp;
      sum += double(p[j]) * double(dp);
      for (int64_t d = 0; d < D; ++d) dv[j * ldk + d] += p[j] * doi[d];
    }
    T* dqi = dq + i * ldq;
    std::fill(dqi, dqi + D, T(0));
    for (int64_t j = 0; j <= i; ++j) {
      const T ds = p[j] * (tmp[j] - static_cast<T>(sum)) * scale;
      for (int64_t d = 0; d < D; ++d) {
        dqi[d] += ds * k[j * ldk + d];
        dk[j * ldk + d] += ds * q[i * ldq + d];
      }
    }
  }
}

}  // namespace moe::train
