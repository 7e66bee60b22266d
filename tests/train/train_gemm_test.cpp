// The f32 kernels of training against naive float64 references on random shapes:
// sgemm in the three layouts of training (X.W^T, dY.W, X^T.dY; with and without
// accumulation, shapes that overhang the micro-tiles; every micro-kernel the CPU
// runs), bit-identical results for any thread count; causal attention forward and
// backward (float kernels) against the double templates; the AVX-512 softmax and
// SwiGLU against double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "train/ops.h"
#include "compare.h"  // tests/common: NaN-aware metrics

using namespace moe::train;

namespace {

std::vector<float> randv(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

enum class Layout { nn, nt, tn };

// C[M,N] (+)= op(A) op(B) through gemm_nn / gemm_nt / gemm_tn; reference in double.
void check(Layout lay, int64_t M, int64_t N, int64_t K, bool acc, std::mt19937_64& rng,
           moe::ThreadPool* pool) {
  // storage of A and B per layout
  const auto A = randv(M * K, rng), B = randv(K * N, rng), C0 = randv(M * N, rng);
  auto a = [&](int64_t i, int64_t k) -> double { return lay == Layout::tn ? A[k * M + i] : A[i * K + k]; };
  auto b = [&](int64_t k, int64_t j) -> double { return lay == Layout::nt ? B[j * K + k] : B[k * N + j]; };
  std::vector<float> C = C0;
  switch (lay) {
    case Layout::nn: gemm_nn(A.data(), B.data(), C.data(), M, K, N, acc, pool); break;
    case Layout::nt: gemm_nt(A.data(), B.data(), C.data(), M, N, K, acc, pool); break;
    case Layout::tn: gemm_tn(A.data(), B.data(), C.data(), K, M, N, acc, pool); break;
  }
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = acc ? double(C0[i * N + j]) : 0.0, mag = std::abs(ref);
      for (int64_t k = 0; k < K; ++k) ref += a(i, k) * b(k, j), mag += std::abs(a(i, k) * b(k, j));
      const double err = std::abs(double(C[i * N + j]) - ref) / (mag + 1e-30);
      worst = moe::test::nan_max(worst, err);
    }
  // float32 accumulation over K terms: |err| <= ~K * 2^-24 * sum|a b|
  EXPECT_LE(worst, 2e-7 * double(K + 2)) << "layout " << int(lay) << " M " << M << " N " << N << " K " << K
                                         << " acc " << acc;
}

TEST(TrainGemm, RandomShapesAgainstDouble) {
  std::mt19937_64 rng(11);
  moe::ThreadPool pool(3);
  std::uniform_int_distribution<int64_t> dim(1, 300);
  for (int it = 0; it < 60; ++it) {
    const int64_t M = dim(rng), N = dim(rng), K = it % 7 == 0 ? 600 + dim(rng) : dim(rng);
    for (Layout lay : {Layout::nn, Layout::nt, Layout::tn})
      check(lay, M, N, K, it % 2 == 1, rng, it % 3 == 0 ? nullptr : &pool);
  }
  // tiny and degenerate shapes
  for (int64_t M : {1, 2, 7, 8, 9})
    for (int64_t N : {1, 5, 16, 31, 33})
      for (int64_t K : {1, 3, 257})
        for (Layout lay : {Layout::nn, Layout::nt, Layout::tn}) check(lay, M, N, K, (M + N) % 2 == 0, rng, &pool);
}

// The kernels this CPU runs below its best one (AVX2+FMA 6x16, portable 4x8).
TEST(TrainGemm, OtherKernelsAgainstDouble) {
  std::mt19937_64 rng(13);
  moe::ThreadPool pool(2);
  std::uniform_int_distribution<int64_t> dim(1, 200);
  const int best = sgemm_select_kernel(2);
  for (int level = best - 1; level >= 0; --level) {
    ASSERT_EQ(sgemm_select_kernel(level), level);
    for (int it = 0; it < 12; ++it) {
      const int64_t M = dim(rng), N = dim(rng), K = dim(rng) + (it % 4 == 0 ? 300 : 0);
      for (Layout lay : {Layout::nn, Layout::nt, Layout::tn}) check(lay, M, N, K, it % 2 == 0, rng, &pool);
    }
  }
  sgemm_select_kernel(2);
}

TEST(TrainGemm, ThreadCountIndependent) {
  std::mt19937_64 rng(5);
  const int64_t M = 517, N = 333, K = 700;
  const auto A = randv(M * K, rng), B = randv(N * K, rng), C0 = randv(M * N, rng);
  std::vector<float> ref = C0;
  gemm_nt(A.data(), B.data(), ref.data(), M, N, K, true, nullptr);
  for (int t : {1, 2, 3, 4}) {
    moe::ThreadPool pool(t);
    std::vector<float> C = C0;
    gemm_nt(A.data(), B.data(), C.data(), M, N, K, true, &pool);
    EXPECT_EQ(0, std::memcmp(C.data(), ref.data(), C.size() * sizeof(float))) << t << " threads";
  }
}

TEST(TrainGemm, ZeroK) {
  std::vector<float> C(6, 5.0f);
  const float a = 0, b = 0;
  sgemm(2, 3, 0, &a, 0, 1, &b, 3, 1, C.data(), 3, true, nullptr);
  for (float c : C) EXPECT_EQ(c, 5.0f);
  sgemm(2, 3, 0, &a, 0, 1, &b, 3, 1, C.data(), 3, false, nullptr);
  for (float c : C) EXPECT_EQ(c, 0.0f);
}

// Float attention (sgemm, row blocks) against the double template on random data,
// with leading dimensions wider than the head and S not a multiple of the block.
TEST(TrainAttention, FloatKernelsAgainstDouble) {
  std::mt19937_64 rng(3);
  for (int64_t S : {1, 5, 32, 70, 128}) {
    const int64_t D = 24, ldq = 3 * D, ldk = 2 * D;
    const float scale = 1.0f / std::sqrt(float(D));
    const auto q = randv(S * ldq, rng), k = randv(S * ldk, rng), v = randv(S * ldk, rng);
    const auto dO = randv(S * ldq, rng), dk0 = randv(S * ldk, rng), dv0 = randv(S * ldk, rng);
    auto dbl = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<float> P(S * S), o(S * ldq, 0.0f), dq(S * ldq, 0.0f), dk = dk0, dv = dv0, tmp(S);
    attention_fwd(q.data(), ldq, k.data(), v.data(), ldk, P.data(), o.data(), ldq, S, D, scale);
    attention_bwd(q.data(), ldq, k.data(), v.data(), ldk, P.data(), dO.data(), ldq, dq.data(), dk.data(),
                  dv.data(), S, D, scale, tmp.data());
    const auto qd = dbl(q), kd = dbl(k), vd = dbl(v), dOd = dbl(dO);
    std::vector<double> Pd(S * S), od(S * ldq, 0.0), dqd(S * ldq, 0.0), dkd = dbl(dk0), dvd = dbl(dv0), tmpd(S);
    attention_fwd(qd.data(), ldq, kd.data(), vd.data(), ldk, Pd.data(), od.data(), ldq, S, D, double(scale));
    attention_bwd(qd.data(), ldq, kd.data(), vd.data(), ldk, Pd.data(), dOd.data(), ldq, dqd.data(),
                  dkd.data(), dvd.data(), S, D, double(scale), tmpd.data());
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        if (j <= i) EXPECT_NEAR(P[i * S + j], Pd[i * S + j], 2e-6) << S << " P " << i << "," << j;
        else EXPECT_EQ(P[i * S + j], 0.0f);
      }
    auto near = [&](const std::vector<float>& a, const std::vector<double>& b, int64_t ld, const char* what) {
      double worst = 0, mx = 0;
      for (int64_t i = 0; i < S; ++i)
        for (int64_t d = 0; d < D; ++d) {
          worst = moe::test::nan_max(worst, std::abs(double(a[i * ld + d]) - b[i * ld + d]));
          mx = moe::test::nan_max(mx, std::abs(b[i * ld + d]));
        }
      EXPECT_LE(worst, 1e-5 * (mx + 1.0)) << what << " S " << S;
    };
    near(o, od, ldq, "o");
    near(dq, dqd, ldq, "dq");
    near(dk, dkd, ldk, "dk");
    near(dv, dvd, ldk, "dv");
  }
}

// AVX-512 softmax / SwiGLU (vecmath.cpp) against double on random rows of every tail length.
TEST(TrainVecMath, SoftmaxAndSwigluAgainstDouble) {
  std::mt19937_64 rng(9);
  for (int64_t n = 1; n <= 70; n += (n < 40 ? 1 : 7)) {
    for (float amp : {0.1f, 5.0f, 40.0f}) {
      auto x = randv(n, rng);
      for (auto& v : x) v *= amp;
      std::vector<double> xd(x.begin(), x.end());
      const float lse = softmax_fwd(x.data(), n);
      const double lsed = softmax_fwd(xd.data(), n);
      EXPECT_NEAR(lse, lsed, 2e-6 * (1.0 + std::abs(lsed))) << n;
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], xd[i], 4e-6 * xd[i] + 1e-9) << n << " " << i;
    }
    auto g = randv(n, rng), u = randv(n, rng), da = randv(n, rng);
    for (auto& v : g) v *= 6.0f;
    std::vector<float> a(n), dg(n), du(n);
    std::vector<double> gd(g.begin(), g.end()), ud(u.begin(), u.end()), dad(da.begin(), da.end()), ad(n), dgd(n), dud(n);
    swiglu_fwd(g.data(), u.data(), a.data(), n);
    swiglu_bwd(g.data(), u.data(), da.data(), dg.data(), du.data(), n);
    swiglu_fwd(gd.data(), ud.data(), ad.data(), n);
    swiglu_bwd(gd.data(), ud.data(), dad.data(), dgd.data(), dud.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(a[i], ad[i], 1e-6 * std::abs(ad[i]) + 1e-7) << n << " " << i;
      EXPECT_NEAR(dg[i], dgd[i], 1e-6 * std::abs(dgd[i]) + 1e-7) << n << " " << i;
      EXPECT_NEAR(du[i], dud[i], 1e-6 * std::abs(dud[i]) + 1e-7) << n << " " << i;
    }
  }
}

}  // namespace
