// 512-bit AVX-512 VNNI kernels for the weight types that decode and prefill spend
// their time in: Q8_0, Q4_0, MXFP4 (activations q8_0) and Q4_K (activations q8_K).
// Selected by ops/quant.cpp ahead of the 256-bit kernels of quant_avx512.cpp on
// the avx512 path; same GemmFn contract (quant_kernels.h).
//
// Q8_0 partner, two 32-blocks per zmm. Weights are unpacked, fused with the dot,
// straight into x's natural element order as UNSIGNED bytes u = w + off
// (Q4_0: nibble, off 8; Q8_0: w ^ 0x80, off 128; MXFP4: 2*E2M1 + 12, off 12), so
// one vpdpbusd per (row, token, block pair) gives sum(u * x); the offset term
// off * sum(x) is shared by all rows and is the accumulator's start value
// (-off * partial sums of x, computed once per token in a prepass). Integer sums
// are exact (|partial| <= 4 * 255 * 128); per block, float(sum) * (d_w * d_x) is
// added to an f32 accumulator, as in the 256-bit kernels.
// Q4_K: per super-block, chunk c (32 bytes of nibbles) expands to one zmm holding
// sub-blocks 2c (low nibbles) and 2c+1 (high), maddubs with x, vpdpwssd with the
// 6-bit scales; the min term uses the activation's bsums.
// Tiles: TR weight rows x TT tokens, TR = 4, TT = 4 (gemv: TT = 1).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "base/fp16.h"
#include "ops/cpu/avx512_target.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_kernels.h"

namespace moe::ops::cpu {
namespace {

// Bytes ahead of the current weight block that each row stream prefetches.
constexpr int kPrefetch = 2;  // row tiles ahead (decode is ~2x slower from DRAM without)

// Prefetch distance (bytes) of the tile at row r of nr: the same block kPrefetch
// tiles ahead (rows of a tile are a few KiB, too short for the hardware stream
// prefetchers to train on), never past the call's rows (0 = the current block).
inline size_t pf_bytes(int64_t r, int tr, int64_t nr, size_t row_stride) {
  for (int k = kPrefetch; k > 0; --k)
    if (r + (k + 1) * tr <= nr) return static_cast<size_t>(k) * tr * row_stride;
  return 0;
}

// gemv (one token) walks the rows one at a time, so that memory is read as one
// sequential stream (A/B on one core, 256 MB from DRAM, 3 alternating rounds: Q8_0
// 8.7-10.4 -> 10.8-15.0 GB/s, Q4_0 7.3-8.6 -> 7.6-11.3, Q4_K 8.5-10.4 -> 12.0-13.1,
// against 4-row tiles), prefetching the same block ~4.5 KiB of rows ahead.
inline size_t gemv_pf(int64_t r, int64_t nr, size_t row_stride) {
  if (row_stride == 0 || nr - r <= 2) return 0;
  const int64_t ahead = std::max<int64_t>(2, static_cast<int64_t>((4608 + row_stride - 1) / row_stride));
  return r + ahead < nr ? static_cast<size_t>(ahead) * row_stride : 0;
}

MOE_T float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

// ---- Q8_0 partner -----------------------------------------------------------------

// Activation prepass of one token: per block pair p, x bytes (64), -off * partial sums
// (16 int32), and [dx_a x8, dx_b x8] (16 f32). A missing second block is zero.
struct XPair {
  __m512i x;
  __m512i negc;
  __m512 dx;
};

template <int kOff>
MOE_T void prepass_q8_0(const BlockQ8_0* xb, int64_t nb, XPair* out, float* dxs) {
  for (int64_t b = 0; b < (nb + 15) / 16 * 16; ++b) dxs[b] = b < nb ? fp16_to_f32(xb[b].d) : 0.f;
  const __m512i off = _mm512_set1_epi8(static_cast<char>(kOff));
  for (int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b].qs));
    const __m256i xc = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b + 1].qs))
                           : _mm256_setzero_si256();
    const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(xa), xc, 1);
    XPair& p = out[b / 2];
    p.x = x;
    p.negc = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, x));
    const float da = fp16_to_f32(xb[b].d), dc = two ? fp16_to_f32(xb[b + 1].d) : 0.f;
    p.dx = _mm512_insertf32x8(_mm512_set1_ps(da), _mm256_set1_ps(dc), 1);
  }
}

// Weight loaders: block pair (a, a+1) of a row -> 64 unsigned bytes in x order.
struct WQ4_0 {
  using W = BlockQ4_0;
  static constexpr int kOff = 8;
  static MOE_T __m512i load(const W* a, bool two) {
    const __m256i ta = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[0].qs)));
    const __m256i tb = two ? _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[1].qs))) : ta;
    const __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(ta), tb, 1);
    const __m512i sh = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0, 0x0004000400040004,
                                        0x0004000400040004, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(t, sh), _mm512_set1_epi8(0x0F));
  }
};
struct WQ8_0 {
  using W = BlockQ8_0;
  static constexpr int kOff = 128;
  static MOE_T __m512i load(const W* a, bool two) {
    const __m256i ta = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[0].qs));
    const __m256i tb = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[1].qs)) : ta;
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(ta), tb, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};
struct WMxfp4 {
  using W = BlockMxfp4;
  static constexpr int kOff = 12;
  static MOE_T __m512i load(const W* a, bool two) {
    const __m256i ta = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[0].qs)));
    const __m256i tb = two ? _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[1].qs))) : ta;
    const __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(ta), tb, 1);
    const __m512i sh = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0, 0x0004000400040004,
                                        0x0004000400040004, 0, 0);
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(t, sh), _mm512_set1_epi8(0x0F));
    // 2*E2M1 + 12 for the 16 codes
    const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
    return _mm512_shuffle_epi8(lut, nib);
  }
};

// Scales of 16 blocks starting at block b of a row (stride sizeof(W)), as f32; lanes
// past nb are 0 (never read past the row).
template <class L>
MOE_T __m512 load_dw16(const typename L::W* row, int64_t b, int64_t nb) {
  const int64_t left = nb - b;
  const __mmask16 k = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int>(sizeof(typename L::W))));
  const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, row + b, 1);
  if constexpr (std::is_same_v<L, WMxfp4>) {
    // e (first byte) -> 2^(e - 128) as f32 bits: e < 2 subnormal.
    const __m512i e = _mm512_and_si512(g, _mm512_set1_epi32(0xFF));
    const __m512i norm = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
    const __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
    const __mmask16 small = _mm512_cmplt_epi32_mask(e, _mm512_set1_epi32(2));
    return _mm512_maskz_mov_ps(k, _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, norm, sub)));
  } else {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
  }
}

// Broadcast of block-pair j (0..7) of a 16-block scale vector: [s[2j] x8, s[2j+1] x8].
MOE_T __m512 pair_scale(__m512 s16, int j) {
  const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(2 * j)), _mm256_set1_epi32(2 * j + 1), 1);
  return _mm512_permutexvar_ps(idx, s16);
}

template <class L, int TR, int TT>
MOE_T void tile_q8(const uint8_t* wbase, size_t row_stride, const XPair* const* xp, const float* const* dxs,
                   int64_t nb, float* Y, int64_t ldy, size_t pf) {
  using W = typename L::W;
  const W* rows[TR];
  for (int i = 0; i < TR; ++i) rows[i] = reinterpret_cast<const W*>(wbase + i * row_stride);
  __m512 acc[TR][TT];
  for (int i = 0; i < TR; ++i)
    for (int j = 0; j < TT; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b16 = 0; b16 < nb; b16 += 16) {
    __m512 dw[TR];
    for (int i = 0; i < TR; ++i) dw[i] = load_dw16<L>(rows[i], b16, nb);
    if constexpr (TT == 1) {  // one token: fold d_x into the 16 scales once
      const __m512 dx16 = _mm512_loadu_ps(dxs[0] + b16);
      for (int i = 0; i < TR; ++i) dw[i] = _mm512_mul_ps(dw[i], dx16);
    }
    const int64_t bend = std::min<int64_t>(nb, b16 + 16);
    for (int64_t b = b16; b < bend; b += 2) {
      const int pj = static_cast<int>((b - b16) / 2);
      const bool two = b + 1 < nb;
      __m512i u[TR];
      __m512 ds[TR];
      for (int i = 0; i < TR; ++i) {
        // Software prefetch: weights come from a 4 KiB-page file mapping, where the
        // hardware prefetchers stop at every page boundary.
        _mm_prefetch(reinterpret_cast<const char*>(rows[i] + b) + pf, _MM_HINT_T0);
        u[i] = L::load(rows[i] + b, two);
        ds[i] = pair_scale(dw[i], pj);
      }
      for (int j = 0; j < TT; ++j) {
        const XPair& p = xp[j][b / 2];
        for (int i = 0; i < TR; ++i) {
          const __m512i s = _mm512_dpbusd_epi32(p.negc, u[i], p.x);
          if constexpr (TT == 1)
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), ds[i], acc[i][j]);
          else
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ds[i], p.dx), acc[i][j]);
        }
      }
    }
  }
  for (int j = 0; j < TT; ++j)
    for (int i = 0; i < TR; ++i) Y[j * ldy + i] = hsum512(acc[i][j]);
}

// One row tile against T (1..4) tokens.
template <class L, int TR>
MOE_T void tile_q8_t(int T, const uint8_t* w, size_t row_stride, const XPair* const* xp, const float* const* dxs,
                     int64_t nb, float* Y, int64_t ldy, size_t pf) {
  switch (T) {
    case 1: tile_q8<L, TR, 1>(w, row_stride, xp, dxs, nb, Y, ldy, pf); break;
    case 2: tile_q8<L, TR, 2>(w, row_stride, xp, dxs, nb, Y, ldy, pf); break;
    case 3: tile_q8<L, TR, 3>(w, row_stride, xp, dxs, nb, Y, ldy, pf); break;
    default: tile_q8<L, TR, 4>(w, row_stride, xp, dxs, nb, Y, ldy, pf); break;
  }
}

// Tokens per chunk: the prepassed activations of a chunk (~256 KiB) stay in L2 while
// every row tile of the call runs over them, so the weights are streamed from
// memory once per chunk rather than once per 4-token tile.
inline int64_t token_chunk(size_t bytes_per_token) {
  const int64_t c = static_cast<int64_t>((256u << 10) / std::max<size_t>(1, bytes_per_token));
  return std::clamp<int64_t>(c / 4 * 4, 4, 128);
}

template <class L>
MOE_TF void gemm_q8(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m, float* Y,
                    int64_t ldy, int64_t nr, int64_t n) {
  constexpr int TT = 4;
  const int64_t nb = n / 32, np = (nb + 1) / 2;
  const int64_t nb16 = (nb + 15) / 16 * 16;
  const size_t per_token = static_cast<size_t>(np) * sizeof(XPair) + static_cast<size_t>(nb16) * 4;
  const int64_t tc = std::min<int64_t>(m, token_chunk(per_token));
  thread_local std::vector<uint8_t> raw;  // XPair[tc * np] then f32[tc * nb16], 64-byte aligned by hand
  const size_t need = static_cast<size_t>(tc) * per_token + 64;
  if (raw.size() < need) raw.resize(need);
  XPair* buf = reinterpret_cast<XPair*>((reinterpret_cast<uintptr_t>(raw.data()) + 63) & ~uintptr_t{63});
  float* dbuf = reinterpret_cast<float*>(buf + tc * np);
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* xbase = static_cast<const uint8_t*>(X);
  for (int64_t t0 = 0; t0 < m; t0 += tc) {
    const int64_t tn = std::min<int64_t>(tc, m - t0);
    for (int64_t j = 0; j < tn; ++j)
      prepass_q8_0<L::kOff>(reinterpret_cast<const BlockQ8_0*>(xbase + (t0 + j) * x_stride), nb, &buf[j * np],
                            dbuf + j * nb16);
    for (int64_t r = 0; r < nr;) {
      const bool full = r + 4 <= nr && m > 1;  // gemv: one row at a time (see gemv_pf)
      const size_t pf = full ? pf_bytes(r, 4, nr, row_stride) : gemv_pf(r, nr, row_stride);
      for (int64_t t = 0; t < tn; t += TT) {
        const int T = static_cast<int>(std::min<int64_t>(TT, tn - t));
        const XPair* xp[TT];
        const float* dxs[TT];
        for (int j = 0; j < T; ++j) {
          xp[j] = &buf[(t + j) * np];
          dxs[j] = dbuf + (t + j) * nb16;
        }
        float* y = Y + (t0 + t) * ldy + r;
        if (full)
          tile_q8_t<L, 4>(T, w + r * row_stride, row_stride, xp, dxs, nb, y, ldy, pf);
        else
          tile_q8_t<L, 1>(T, w + r * row_stride, row_stride, xp, dxs, nb, y, ldy, pf);
      }
      r += full ? 4 : 1;
    }
  }
}

// ---- Q4_K . q8_K ---------------------------------------------------------------------

// 8 scales then 8 mins (6-bit each) of a Q4_K/Q5_K block as 16 bytes.
MOE_T __m128i k_scales_mins(const uint8_t* s) {
  uint32_t u[4];
  std::memcpy(u, s, 12);
  constexpr uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
  u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
  const uint32_t a = u[1] & k1;
  u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
  u[2] = a;
  u[0] &= k1;
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

struct KRow {  // one row's super-block, unpacked for the dot
  __m512i q[4];   // chunk c: sub-blocks 2c | 2c+1, unsigned 0..15
  __m512i sc[4];  // int16: [sc_2c x16, sc_2c+1 x16]
  __m256i mins;   // int16 pairs [m0, m0, m1, m1, ...]
  float d, dmin;
};

MOE_T void unpack_q4k(const BlockQ4K& b, KRow& k) {
  const __m512i sh = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                      0x0004000400040004, 0, 0, 0, 0);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m512i t = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c)));
    k.q[c] = _mm512_and_si512(_mm512_srlv_epi16(t, sh), m4);
  }
  const __m512i sm = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(k_scales_mins(b.scales)));  // 0..7 sc, 8..15 m
  for (int c = 0; c < 4; ++c) {
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<short>(2 * c))),
                                           _mm256_set1_epi16(static_cast<short>(2 * c + 1)), 1);
    k.sc[c] = _mm512_permutexvar_epi16(idx, sm);
  }
  const __m256i midx = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  k.mins = _mm256_permutexvar_epi16(midx, _mm512_castsi512_si256(sm));
  k.d = fp16_to_f32(b.d);
  k.dmin = fp16_to_f32(b.dmin);
}

template <int TR, int TT>
MOE_T void tile_q4k(const uint8_t* wbase, size_t row_stride, const BlockQ8K* const* xr, int64_t nb, float* Y,
                    int64_t ldy, size_t pf) {
  __m512 acc[TR][TT];
  for (int i = 0; i < TR; ++i)
    for (int j = 0; j < TT; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    KRow k[TR];
    for (int i = 0; i < TR; ++i) {
      const char* p = reinterpret_cast<const char*>(wbase + i * row_stride + b * sizeof(BlockQ4K));
      _mm_prefetch(p + pf, _MM_HINT_T0);
      _mm_prefetch(p + pf + 64, _MM_HINT_T0);
      _mm_prefetch(p + pf + 128, _MM_HINT_T0);
      unpack_q4k(reinterpret_cast<const BlockQ4K*>(wbase + i * row_stride)[b], k[i]);
    }
    for (int j = 0; j < TT; ++j) {
      const BlockQ8K& x = xr[j][b];
      float dx;
      std::memcpy(&dx, &x.d, 4);
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
      for (int i = 0; i < TR; ++i) {
        __m512i s = _mm512_setzero_si512();
        for (int c = 0; c < 4; ++c) {
          const __m512i xv = _mm512_loadu_si512(x.qs + 64 * c);
          s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(k[i].q[c], xv), k[i].sc[c]);
        }
        const __m256i mm = _mm256_madd_epi16(bs, k[i].mins);  // 8 int32
        // lanes 0..7: sum - (dmin/d) * mins is not exact; keep two f32 terms.
        const __m512 sf = _mm512_cvtepi32_ps(s);
        const __m512 mf = _mm512_castps256_ps512(_mm256_cvtepi32_ps(mm));
        acc[i][j] = _mm512_fmadd_ps(sf, _mm512_set1_ps(k[i].d * dx), acc[i][j]);
        acc[i][j] = _mm512_mask3_fnmadd_ps(mf, _mm512_set1_ps(k[i].dmin * dx), acc[i][j], 0x00FF);
      }
    }
  }
  for (int j = 0; j < TT; ++j)
    for (int i = 0; i < TR; ++i) Y[j * ldy + i] = hsum512(acc[i][j]);
}

template <int TR>
MOE_T void tile_q4k_t(int T, const uint8_t* w, size_t row_stride, const BlockQ8K* const* xr, int64_t nb, float* Y,
                      int64_t ldy, size_t pf) {
  switch (T) {
    case 1: tile_q4k<TR, 1>(w, row_stride, xr, nb, Y, ldy, pf); break;
    case 2: tile_q4k<TR, 2>(w, row_stride, xr, nb, Y, ldy, pf); break;
    case 3: tile_q4k<TR, 3>(w, row_stride, xr, nb, Y, ldy, pf); break;
    default: tile_q4k<TR, 4>(w, row_stride, xr, nb, Y, ldy, pf); break;
  }
}

MOE_TF void gemm_q4k(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m, float* Y,
                     int64_t ldy, int64_t nr, int64_t n) {
  constexpr int TT = 4;
  const int64_t nb = n / 256;
  const int64_t tc = std::min<int64_t>(m, token_chunk(x_stride));
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* xbase = static_cast<const uint8_t*>(X);
  for (int64_t t0 = 0; t0 < m; t0 += tc) {
    const int64_t tn = std::min<int64_t>(tc, m - t0);
    for (int64_t r = 0; r < nr;) {
      const bool full = r + 4 <= nr && m > 1;  // gemv: one row at a time (see gemv_pf)
      const size_t pf = full ? pf_bytes(r, 4, nr, row_stride) : gemv_pf(r, nr, row_stride);
      for (int64_t t = 0; t < tn; t += TT) {
        const int T = static_cast<int>(std::min<int64_t>(TT, tn - t));
        const BlockQ8K* xr[TT];
        for (int j = 0; j < T; ++j) xr[j] = reinterpret_cast<const BlockQ8K*>(xbase + (t0 + t + j) * x_stride);
        float* y = Y + (t0 + t) * ldy + r;
        if (full)
          tile_q4k_t<4>(T, w + r * row_stride, row_stride, xr, nb, y, ldy, pf);
        else
          tile_q4k_t<1>(T, w + r * row_stride, row_stride, xr, nb, y, ldy, 0);
      }
      r += full ? 4 : 1;
    }
  }
}

}  // namespace

GemmFn gemm_avx512_zmm(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return gemm_q8<WQ8_0>;
    case GgmlType::Q4_0: return gemm_q8<WQ4_0>;
    case GgmlType::MXFP4: return gemm_q8<WMxfp4>;
    case GgmlType::Q4_K: return gemm_q4k;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu
