// The f32 matrix kernel of training (see sgemm in ops.h): GotoBLAS/BLIS-style
// packing of op(B) into NR-column panels (once per call, shared by the threads)
// and of op(A) into MR-row panels (per KC block, per work item), and a register
// micro-kernel MR x NR: AVX-512 8x32, AVX2+FMA 6x16, or portable C++ 4x8, picked
// once at load time. Strides in the packing absorb the transposes of the three
// training shapes (X.W^T, dY.W, X^T.dY), so nothing is transposed in memory.
//
// Numerics: every C element is one chain of fused multiply-adds over k = 0..K-1
// in order, starting from C (accumulate) or 0; tiles that overhang M or N run the
// same kernel on zero-padded panels and copy the valid part. The blocking and the
// thread split decide only who computes an element, never how: results do not
// depend on the thread count (nor on MC/NC/KC).
#include <algorithm>
#include <cstring>
#include <vector>

#include "train/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moe::train {
namespace {

constexpr int64_t KC = 256;  // k block: A and B micro-panels of one block stay in L1/L2

using Kernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, bool load);

struct Isa {
  int64_t mr, nr;
  Kernel kernel;
};

// Portable kernel 4x8 (also the reference of the layout).
void kernel_generic(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, bool load) {
  constexpr int MR = 4, NR = 8;
  float acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = load ? c[r * ldc + j] : 0.0f;
  for (int64_t k = 0; k < kc; ++k, ap += MR, bp += NR)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = std::fma(ap[r], bp[j], acc[r][j]);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* ap, const float* bp,
                                                     float* c, int64_t ldc, bool load) {
  constexpr int MR = 6;
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    c0[r] = load ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    c1[r] = load ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k, ap += MR, bp += 16) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    _mm256_storeu_ps(c + r * ldc, c0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
  }
}

__attribute__((target("avx512f"))) void kernel_avx512(int64_t kc, const float* ap, const float* bp,
                                                      float* c, int64_t ldc, bool load) {
  constexpr int MR = 8;
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    c0[r] = load ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    c1[r] = load ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k, ap += MR, bp += 32) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(ap[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, c0[r]);
    _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
  }
}
#endif

// the best kernel at most `level` (0 portable, 1 AVX2+FMA, 2 AVX-512) this CPU runs
Isa pick_isa(int level) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (level >= 2 && __builtin_cpu_supports("avx512f")) return {8, 32, kernel_avx512};
  if (level >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {6, 16, kernel_avx2};
#endif
  return {4, 8, kernel_generic};
}

Isa& isa_slot() {
  static Isa i = pick_isa(2);
  return i;
}
const Isa& isa() { return isa_slot(); }

// op(B) columns [j0, j0 + NR) (zero beyond N), all K rows, into bp[k * NR + c].
template <int NR>
void pack_b_panel_t(const float* B, int64_t brs, int64_t bcs, int64_t K, int64_t N, int64_t j0, float* bp) {
  const int64_t w = std::min<int64_t>(NR, N - j0);
  if (w == NR && bcs == 1) {
    for (int64_t k = 0; k < K; ++k) {
      const float* src = B + k * brs + j0;
      float* dst = bp + k * NR;
      for (int c = 0; c < NR; ++c) dst[c] = src[c];
    }
  } else if (w == NR) {
    const float* src = B + j0 * bcs;
    for (int64_t k = 0; k < K; ++k) {
      float* dst = bp + k * NR;
      for (int c = 0; c < NR; ++c) dst[c] = src[c * bcs + k * brs];
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      float* dst = bp + k * NR;
      for (int64_t c = 0; c < w; ++c) dst[c] = B[k * brs + (j0 + c) * bcs];
      for (int64_t c = w; c < NR; ++c) dst[c] = 0.0f;
    }
  }
}

// op(A) rows [i0, i0 + MR) (zero beyond M), k in [k0, k0 + kc), into ap[k * MR + r].
template <int MR>
void pack_a_panel_t(const float* A, int64_t ars, int64_t acs, int64_t M, int64_t i0, int64_t k0,
                    int64_t kc, float* ap) {
  const int64_t h = std::min<int64_t>(MR, M - i0);
  if (h == MR && ars == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A + i0 + (k0 + k) * acs;
      float* dst = ap + k * MR;
      for (int r = 0; r < MR; ++r) dst[r] = src[r];
    }
  } else if (h == MR) {
    const float* src = A + i0 * ars + k0 * acs;
    for (int64_t k = 0; k < kc; ++k) {
      float* dst = ap + k * MR;
      for (int r = 0; r < MR; ++r) dst[r] = src[r * ars + k * acs];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      float* dst = ap + k * MR;
      for (int64_t r = 0; r < h; ++r) dst[r] = A[(i0 + r) * ars + (k0 + k) * acs];
      for (int64_t r = h; r < MR; ++r) dst[r] = 0.0f;
    }
  }
}

void pack_b_panel(const float* B, int64_t brs, int64_t bcs, int64_t K, int64_t N, int64_t j0,
                  int64_t nr, float* bp) {
  switch (nr) {
    case 32: return pack_b_panel_t<32>(B, brs, bcs, K, N, j0, bp);
    case 16: return pack_b_panel_t<16>(B, brs, bcs, K, N, j0, bp);
    default: return pack_b_panel_t<8>(B, brs, bcs, K, N, j0, bp);
  }
}

void pack_a_panel(const float* A, int64_t ars, int64_t acs, int64_t M, int64_t i0, int64_t mr,
                  int64_t k0, int64_t kc, float* ap) {
  switch (mr) {
    case 8: return pack_a_panel_t<8>(A, ars, acs, M, i0, k0, kc, ap);
    case 6: return pack_a_panel_t<6>(A, ars, acs, M, i0, k0, kc, ap);
    default: return pack_a_panel_t<4>(A, ars, acs, M, i0, k0, kc, ap);
  }
}

}  // namespace

int64_t sgemm_panel_width() { return isa().nr; }

int sgemm_select_kernel(int level) {
  isa_slot() = pick_isa(level);
  return isa().nr == 32 ? 2 : isa().nr == 16 ? 1 : 0;
}

int64_t sgemm_packed_b_size(int64_t K, int64_t N) {
  const int64_t NR = isa().nr;
  return (N + NR - 1) / NR * NR * K;
}

void sgemm_pack_b(int64_t K, int64_t N, const float* B, int64_t brs, int64_t bcs, float* bpack,
                  ThreadPool* pool) {
  const int64_t NR = isa().nr, n_panels = (N + NR - 1) / NR;
  auto pack = [&](int64_t jp) { pack_b_panel(B, brs, bcs, K, N, jp * NR, NR, bpack + jp * NR * K); };
  if (pool && pool->size() > 1 && n_panels > 1 && n_panels * K * NR >= (int64_t(1) << 15)) {
    pool->parallel_for(n_panels, [&](int64_t jp, int) { pack(jp); });
  } else {
    for (int64_t jp = 0; jp < n_panels; ++jp) pack(jp);
  }
}

void sgemm_prepacked(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs,
                     const float* bpack, int64_t panel_stride, float* C, int64_t ldc, bool accumulate,
                     ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  const Isa& is = isa();
  const int64_t MR = is.mr, NR = is.nr;
  const int64_t n_panels = (N + NR - 1) / NR;
  const bool par = pool && pool->size() > 1 && M * N * K >= (int64_t(1) << 18);
  // work items: (row block of MC, column block of NCp panels)
  const int64_t threads = par ? pool->size() : 1;
  int64_t MC = std::min<int64_t>(128, (M + MR - 1) / MR * MR);
  int64_t NCp = std::min<int64_t>(n_panels, 512 / NR);  // panels per column block
  auto n_items = [&] { return ((M + MC - 1) / MC) * ((n_panels + NCp - 1) / NCp); };
  while (n_items() < 4 * threads && MC > 4 * MR) MC = (MC / 2 + MR - 1) / MR * MR;
  while (n_items() < 4 * threads && NCp > 1) NCp = (NCp + 1) / 2;
  const int64_t nm = (M + MC - 1) / MC, nn = (n_panels + NCp - 1) / NCp;
  auto item = [&](int64_t it) {
    const int64_t i0 = (it / nn) * MC, i1 = std::min(M, i0 + MC);
    const int64_t p0 = (it % nn) * NCp, p1 = std::min(n_panels, p0 + NCp);
    const int64_t n_ap = (i1 - i0 + MR - 1) / MR;
    thread_local std::vector<float> abuf;
    if (abuf.size() < static_cast<size_t>(n_ap * MR * KC)) abuf.resize(n_ap * MR * KC);
    float* apack = abuf.data();
    alignas(64) float tmp[8 * 32] = {};
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      const bool load = accumulate || k0 > 0;
      for (int64_t ip = 0; ip < n_ap; ++ip)
        pack_a_panel(A, ars, acs, M, i0 + ip * MR, MR, k0, kc, apack + ip * MR * kc);
      for (int64_t jp = p0; jp < p1; ++jp) {
        const float* bp = bpack + jp * panel_stride + k0 * NR;
        const int64_t j0 = jp * NR, w = std::min(NR, N - j0);
        for (int64_t ip = 0; ip < n_ap; ++ip) {
          const int64_t r0 = i0 + ip * MR, h = std::min(MR, M - r0);
          float* c = C + r0 * ldc + j0;
          if (h == MR && w == NR) {
            is.kernel(kc, apack + ip * MR * kc, bp, c, ldc, load);
          } else {
            if (load)
              for (int64_t r = 0; r < h; ++r) std::memcpy(tmp + r * NR, c + r * ldc, w * sizeof(float));
            is.kernel(kc, apack + ip * MR * kc, bp, tmp, NR, load);
            for (int64_t r = 0; r < h; ++r) std::memcpy(c + r * ldc, tmp + r * NR, w * sizeof(float));
          }
        }
      }
    }
  };
  if (par && nm * nn > 1) {
    pool->parallel_for(nm * nn, [&](int64_t it, int) { item(it); });
  } else {
    for (int64_t it = 0; it < nm * nn; ++it) item(it);
  }
}

void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
           int64_t brs, int64_t bcs, float* C, int64_t ldc, bool accumulate, ThreadPool* pool) {
  if (M <= 0 || N <= 0 || K <= 0) return sgemm_prepacked(M, N, K, A, ars, acs, nullptr, 0, C, ldc, accumulate, pool);
  // op(B), all of it, in NR-column panels: bpack[panel][k][NR]
  thread_local std::vector<float> bbuf;
  const int64_t sz = sgemm_packed_b_size(K, N);
  if (bbuf.size() < static_cast<size_t>(sz)) bbuf.resize(sz);
  const bool par = pool && M * N * K >= (int64_t(1) << 18);
  sgemm_pack_b(K, N, B, brs, bcs, bbuf.data(), par ? pool : nullptr);
  sgemm_prepacked(M, N, K, A, ars, acs, bbuf.data(), K * isa().nr, C, ldc, accumulate, pool);
}

}  // namespace moe::train
