// AVX-512 VNNI kernels on the packed (row-interleaved) layouts of ops/pack.h, for
// Q4_0, Q8_0 (activations q8_0) and Q4_K, Q5_K, Q6_K (activations q8_K). Called through
// gemm_packed_avx512() by ops/pack.cpp on the avx512 kernel path only; compiled
// with per-function target attributes (ops/cpu/avx512_target.h).
//
// Layout (pack_kernels.h): a tile of 16 rows stores block b of its 16 rows as one
// record, the records of a tile one after another, the tiles one after another.
// Inside a record, 32-bit lane r of each 64-byte vector holds 4 weights of row r
// (unsigned: Q4_0 nibble q in 0..15, Q8_0 q + 128; Q4_K nibble; Q5_K the 5-bit q;
// Q6_K the 6-bit q), so one vpdpbusd with a broadcast activation dword adds 4
// products to each of the 16 rows:
//   acc_i[r] = sum_i u[r][i] * x[i]  (u8 x s8, exact in int32).
// The offset of the unsigned weights is shared by all rows:
//   sum_i (u - off) * x = acc_i - off * sum_i x,
// so the int32 accumulator starts at -off * sum(x_block) (a per-token prepass; Q6_K:
// off = 32 per sub-block of 16, from the q8_K bsums).
// Per block, acc_f[r] += float(acc_i[r]) * d_w[r] * d_x (16 rows in one fma).
// Q4_K/Q5_K per sub-block s: acc_f[r] += float(acc_i[r]) * d[r] * sc_s[r], and per
// super-block the min term -dmin[r] * sum_s m_s[r] * (bsums[2s] + bsums[2s+1]),
// with vpdpwssd on (m_2p, m_2p+1) x (bs_2p, bs_2p+1) int16 pairs. Q6_K per sub-block u
// of 16: acc_f[r] += float(acc_i[r]) * d[r] * sc_u[r] (int8 scales, vpmovsxbd).
// m > 1: a micro-kernel of 16 rows x up to 8 tokens unpacks each record once into
// registers and reuses it for all the tokens. m == 1: the same micro-kernel with
// one token; the matrix is one sequential stream, prefetched kPrefetch bytes ahead.
// A prepass copies each token group's activations block by block (the group's quants,
// then their per-block terms), so a micro-kernel reaches all its tokens through one
// pointer with constant offsets; Q4_0/Q8_0 interleave the tokens' vpdpbusd chains.
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "ops/cpu/avx512_target.h"
#include "ops/cpu/pack_kernels.h"
#include "ops/cpu/quant_blocks.h"

namespace moe::ops::cpu {
namespace {

// Bytes ahead of the current record that the first pass over a tile prefetches
// (the weights are one sequential stream; the hardware prefetchers stop at 4 KiB
// pages, so software prefetch keeps DRAM busy across page boundaries).
constexpr size_t kPrefetch = 4096;
// Most tokens per micro-kernel call. Registers: Q4_0/Q8_0 8 weight vectors + 1 scale
// + 1 f32 accumulator per token; Q4_K 2 per token (sub-block sums and the total).
// 12 or 16 tokens measured no faster than 8 (A/B, one core).
constexpr int kTokQ8 = 8;
constexpr int kTokQ4K = 8;  // also Q5_K
constexpr int kTokQ6K = 8;

// acc += w (u8) . broadcast of the 4 activation bytes at p (s8), with the
// broadcast folded into vpdpbusd's memory operand ({1to16}): one fused load-op
// instead of a vpbroadcastd plus a vpdpbusd (GCC 12 does not fold it itself).
typedef int32_t __attribute__((may_alias, aligned(1))) I32Unaligned;
MOE_T __m512i dpbusd_bcast(__m512i acc, __m512i w, const void* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*static_cast<const I32Unaligned*>(p)));
  return acc;
}

MOE_T __m512 load_ph16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Prefetch [p, p + bytes) (bytes a multiple of 64 or not: every 64 bytes one line).
template <size_t kBytes>
MOE_T void prefetch_range(const uint8_t* p) {
  for (size_t o = 0; o < kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

// ---- Q4_0 / Q8_0 (activations q8_0) ---------------------------------------------------

// Per token and block: -off * sum(x_q) (int32 start of the accumulator) and d_x.
struct ActQ8 {
  int32_t corr;
  float d;
};
// A group of n tokens' activations, regrouped by the prepass so that the tile kernel
// reads them through one pointer: block b of the group at b * n * kQ8TokBlock holds
// the n tokens' 32 quants (32 t .. 32 t + 31), then their n ActQ8 terms.
constexpr size_t kQ8TokBlock = 32 + sizeof(ActQ8);

template <int kOff>
MOE_T void prepass_q8_0(const uint8_t* X, size_t x_stride, int n, int64_t nb, uint8_t* dst) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int t = 0; t < n; ++t) {
    const auto* x = reinterpret_cast<const BlockQ8_0*>(X + t * x_stride);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* d = dst + b * n * kQ8TokBlock;
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32 * t), q);
      // sum(q + 128) by vpsadbw, then minus 32 * 128
      const __m256i s4 = _mm256_sad_epu8(_mm256_xor_si256(q, flip), _mm256_setzero_si256());
      const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
      const int32_t sum = static_cast<int32_t>(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
      const ActQ8 a{-kOff * sum, fp16_to_f32(x[b].d)};
      std::memcpy(d + 32 * n + sizeof(ActQ8) * t, &a, sizeof a);
    }
  }
}

// One tile (16 rows, nb records at p) x T tokens (the group at xg): Y[t * ldy + r].
// pf: prefetch distance in bytes, 0 = none. The T dot-product chains of a block are
// interleaved (tokens innermost), so consecutive vpdpbusd never wait on each other.
template <bool kQ4, int T>
MOE_T void tile_q8_0(const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy, size_t pf) {
  constexpr size_t kRec = kQ4 ? kRecQ4_0 : kRecQ8_0;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b, p += kRec, xg += T * kQ8TokBlock) {
    if (pf) prefetch_range<kRec>(p + pf);
    const auto* a = reinterpret_cast<const ActQ8*>(xg + 32 * T);
    __m512i s[T];
    for (int t = 0; t < T; ++t) s[t] = _mm512_set1_epi32(a[t].corr);
    // weight vector j: elements 4j..4j+3 (Q8_0); Q4_0 low nibbles 8j..8j+3 (j < 4)
    // and high nibbles 8j'+4..8j'+7 (j = 4 + j')
    for (int j = 0; j < 8; ++j) {
      __m512i w;
      if constexpr (kQ4) {
        const __m512i v = _mm512_loadu_si512(p + 32 + 64 * (j & 3));
        w = _mm512_and_si512(j < 4 ? v : _mm512_srli_epi16(v, 4), m4);
      } else {
        w = _mm512_loadu_si512(p + 32 + 64 * j);
      }
      const int off = kQ4 ? 8 * (j & 3) + 4 * (j >> 2) : 4 * j;
      for (int t = 0; t < T; ++t) s[t] = dpbusd_bcast(s[t], w, xg + 32 * t + off);
    }
    const __m512 dw = load_ph16(p);
    for (int t = 0; t < T; ++t)
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(dw, _mm512_set1_ps(a[t].d)), acc[t]);
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(Y + t * ldy, acc[t]);
}

// tile_q8_0 for n (1..T) tokens.
template <bool kQ4, int T>
MOE_T void tile_q8_0_n(int n, const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy,
                       size_t pf) {
  if constexpr (T > 1)
    if (n < T) return tile_q8_0_n<kQ4, T - 1>(n, p, nb, xg, Y, ldy, pf);
  tile_q8_0<kQ4, T>(p, nb, xg, Y, ldy, pf);
}

// Tokens per chunk: the activations of a chunk (~256 KiB) stay in L2 while every
// tile runs over them, so the weights stream from memory once per chunk.
inline int64_t token_chunk(size_t x_stride) {
  const int64_t c = static_cast<int64_t>((256u << 10) / std::max<size_t>(1, x_stride));
  return std::clamp<int64_t>(c / 16 * 16, 16, 256);
}

// Token groups of a chunk of tn tokens: ceil(tn / kMax) groups of nearly equal size
// (17 tokens at kMax = 8: 6, 6, 5 rather than 8, 8, 1). Group g is [start, start + size).
struct Groups {
  int64_t n, base, extra;
  Groups(int64_t tn, int kMax) : n((tn + kMax - 1) / kMax), base(tn / n), extra(tn % n) {}
  int64_t start(int64_t g) const { return g * base + std::min(g, extra); }
  int size(int64_t g) const { return static_cast<int>(base + (g < extra ? 1 : 0)); }
};

// Prefetch distance for tile k of `tiles` (tile_bytes each): none past the last tile.
inline size_t pf_for(int64_t k, int64_t tiles, size_t tile_bytes) {
  const size_t left = static_cast<size_t>(tiles - 1 - k) * tile_bytes;
  return left >= kPrefetch ? kPrefetch : 0;
}

// The loop shared by the packed kernels: chunks of tokens whose activations stay in
// L2, split into token groups of nearly equal size; kPrepass regroups each group's
// activations (kTokBlock bytes per token and block) for its tile kernel; then every
// tile of the matrix runs over every group (kTileN: one tile, one group; the first
// group of a tile prefetches ahead in the weight stream).
template <int kTok, size_t kRec, size_t kTokBlock, auto kPrepass, auto kTileN>
MOE_TF void gemm_tiles(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X, size_t x_stride,
                       int64_t m, float* Y, int64_t ldy) {
  const size_t tile_bytes = static_cast<size_t>(nb) * kRec;
  const int64_t tc = std::min<int64_t>(m, token_chunk(x_stride));
  thread_local std::vector<uint8_t> xg;
  const size_t group_bytes = static_cast<size_t>(nb) * kTokBlock;  // per token of a group
  if (xg.size() < static_cast<size_t>(tc) * group_bytes) xg.resize(static_cast<size_t>(tc) * group_bytes);
  for (int64_t t0 = 0; t0 < m; t0 += tc) {
    const int64_t tn = std::min<int64_t>(tc, m - t0);
    const Groups groups(tn, kTok);
    for (int64_t g = 0; g < groups.n; ++g)
      kPrepass(X + (t0 + groups.start(g)) * x_stride, x_stride, groups.size(g), nb,
               xg.data() + groups.start(g) * group_bytes);
    for (int64_t k = 0; k < tiles; ++k) {
      const uint8_t* p = Wp + k * tile_bytes;
      for (int64_t g = 0; g < groups.n; ++g) {
        const int64_t t = groups.start(g);
        kTileN(groups.size(g), p, nb, xg.data() + t * group_bytes, Y + (t0 + t) * ldy + k * kTileRows, ldy,
               g == 0 ? pf_for(k, tiles, tile_bytes) : 0);
      }
    }
  }
}

// vpshufb control that builds each dword from bytes (b0, b1, b2, b3) of the same dword
// (0x80: zero).
MOE_T __m512i dword_bytes(int b0, int b1, int b2, int b3) {
  auto at = [](int b, int i) { return static_cast<uint32_t>(b == 0x80 ? 0x80 : 4 * i + b); };
  uint32_t v[4];
  for (int i = 0; i < 4; ++i) v[i] = at(b0, i) | at(b1, i) << 8 | at(b2, i) << 16 | at(b3, i) << 24;
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

// ---- Q4_K (activations q8_K) ------------------------------------------------------------

// Per token and super-block: d_x and the int16 pairs (bs_2p, bs_2p+1), p = 0..3,
// bs_s = bsums[2s] + bsums[2s+1] = sum of x_q over sub-block s.
struct ActQ8K {
  float d;
  int32_t bsp[4];
};
// A group of n tokens, regrouped: super-block b at b * n * kQ8KTokBlock holds sub-block
// s of token t at 32 (s n + t), then the n ActQ8K terms.
constexpr size_t kQ8KTokBlock = 256 + sizeof(ActQ8K);

MOE_T void prepass_q8_k(const uint8_t* X, size_t x_stride, int n, int64_t nb, uint8_t* dst) {
  for (int t = 0; t < n; ++t) {
    const auto* x = reinterpret_cast<const BlockQ8K*>(X + t * x_stride);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* d = dst + b * n * kQ8KTokBlock;
      for (int s = 0; s < 8; ++s) std::memcpy(d + 32 * (s * n + t), x[b].qs + 32 * s, 32);
      ActQ8K a;
      std::memcpy(&a.d, &x[b].d, 4);
      for (int q = 0; q < 4; ++q) {
        const auto lo = static_cast<uint16_t>(x[b].bsums[4 * q] + x[b].bsums[4 * q + 1]);
        const auto hi = static_cast<uint16_t>(x[b].bsums[4 * q + 2] + x[b].bsums[4 * q + 3]);
        a.bsp[q] = static_cast<int32_t>(lo | (static_cast<uint32_t>(hi) << 16));
      }
      std::memcpy(d + 256 * n + sizeof(ActQ8K) * t, &a, sizeof a);
    }
  }
}

// The Q4_K/Q5_K super-block tail shared by both kernels: the min term
// sb[t] -= dmin * sum_s m_s * bs_s (vpdpwssd on int16 pairs), then acc[t] += sb[t] * d_x.
// The 6-bit mins come from the scale planes at p + kQ4KScalesOff (the same in both
// records).
template <int T>
MOE_T void min_terms(const uint8_t* p, const ActQ8K* act, __m512* sb, __m512* acc) {
  const __m512i k6 = _mm512_set1_epi32(0x3f3f3f3f), k4 = _mm512_set1_epi32(0x0f0f0f0f),
                k2 = _mm512_set1_epi32(0x03030303);
  const __m512i pair01 = dword_bytes(0, 0x80, 1, 0x80);
  const __m512i pair23 = dword_bytes(2, 0x80, 3, 0x80);
  const __m512 dmw = load_ph16(p + 32);
  const __m512i u1 = _mm512_loadu_si512(p + kQ4KScalesOff + 64);
  const __m512i u2 = _mm512_loadu_si512(p + kQ4KScalesOff + 128);
  const __m512i m03 = _mm512_and_si512(u1, k6);
  const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), k4),
                                      _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), k2), 4));
  const __m512i mp[4] = {_mm512_shuffle_epi8(m03, pair01), _mm512_shuffle_epi8(m03, pair23),
                         _mm512_shuffle_epi8(m47, pair01), _mm512_shuffle_epi8(m47, pair23)};
  for (int t = 0; t < T; ++t) {
    __m512i ms = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mp[0], _mm512_set1_epi32(act[t].bsp[0]));
    for (int q = 1; q < 4; ++q) ms = _mm512_dpwssd_epi32(ms, mp[q], _mm512_set1_epi32(act[t].bsp[q]));
    sb[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), dmw, sb[t]);
    acc[t] = _mm512_fmadd_ps(sb[t], _mm512_set1_ps(act[t].d), acc[t]);
  }
}

template <int T>
MOE_T void tile_q4_k(const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy, size_t pf) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i k6 = _mm512_set1_epi32(0x3f3f3f3f), k4 = _mm512_set1_epi32(0x0f0f0f0f),
                k2 = _mm512_set1_epi32(0x03030303);
  // vpshufb controls (indices are bytes of the 128-bit lane, dword i = bytes 4i..4i+3):
  // byte k of each dword zero-extended to int32 (min_terms: bytes (0, 1) / (2, 3) to int16 pairs).
  __m512i pick[4];
  for (int k = 0; k < 4; ++k) pick[k] = dword_bytes(k, 0x80, 0x80, 0x80);
  for (int64_t b = 0; b < nb; ++b, p += kRecQ4K, xg += T * kQ8KTokBlock) {
    const auto* act = reinterpret_cast<const ActQ8K*>(xg + 256 * T);
    const __m512 dw = load_ph16(p);
    const __m512i u0 = _mm512_loadu_si512(p + kQ4KScalesOff);
    const __m512i u2 = _mm512_loadu_si512(p + kQ4KScalesOff + 128);
    // 6-bit scales and mins of sub-blocks 0..3 and 4..7, one byte each per lane
    const __m512i s03 = _mm512_and_si512(u0, k6);
    const __m512i s47 = _mm512_or_si512(_mm512_and_si512(u2, k4),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), k2), 4));
    __m512 sb[T];
    for (int t = 0; t < T; ++t) sb[t] = _mm512_setzero_ps();
    for (int s = 0; s < 8; ++s) {
      const uint8_t* g = p + kQ4KQsOff + kNibbleGroupBytes * s;
      if (pf) prefetch_range<kNibbleGroupBytes>(g + pf);
      const __m512i sc = _mm512_shuffle_epi8(s < 4 ? s03 : s47, pick[s & 3]);
      const __m512 dsc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(sc));
      const uint8_t* xs = xg + 32 * s * T;
      // One dot-product chain per token here (the sub-block sums sb take the
      // registers that interleaved chains would need).
      __m512i w[8];
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_loadu_si512(g + 64 * j);
        w[j] = _mm512_and_si512(v, m4);
        w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* xq = xs + 32 * t;
        __m512i a = dpbusd_bcast(_mm512_setzero_si512(), w[0], xq);
        a = dpbusd_bcast(a, w[4], xq + 4);
        for (int j = 1; j < 4; ++j) {
          a = dpbusd_bcast(a, w[j], xq + 8 * j);
          a = dpbusd_bcast(a, w[4 + j], xq + 8 * j + 4);
        }
        sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), dsc, sb[t]);
      }
    }
    if (pf) prefetch_range<kQ4KQsOff>(p + pf);
    min_terms<T>(p, act, sb, acc);
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(Y + t * ldy, acc[t]);
}

// tile_q4_k for n (1..T) tokens.
template <int T>
MOE_T void tile_q4_k_n(int n, const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy,
                       size_t pf) {
  if constexpr (T > 1)
    if (n < T) return tile_q4_k_n<T - 1>(n, p, nb, xg, Y, ldy, pf);
  tile_q4_k<T>(p, nb, xg, Y, ldy, pf);
}

// ---- Q5_K (activations q8_K, the Q4_K prepass) --------------------------------------------

// vpternlogd: bit select, a where c is set, else b
constexpr int kSelect = 0xE4;

// The 8 weight vectors of a Q5_K group (5 vectors v0..v4, pack_kernels.h): w_c =
// low 5 bits of v_c (c < 5); w5..w7 gather the top 3 bits of v0..v4 (the 15-bit X)
// by byte-wise right shifts and bit selects. Bits shifted in from the neighbouring
// byte land only where a select or the final mask drops them.
MOE_T void q5_weights(const uint8_t* g, __m512i* w) {
  const __m512i m1f = _mm512_set1_epi8(0x1F), m01 = _mm512_set1_epi8(0x01), m03 = _mm512_set1_epi8(0x03),
                m07 = _mm512_set1_epi8(0x07), m0f = _mm512_set1_epi8(0x0F);
  __m512i v[5];
  for (int c = 0; c < 5; ++c) {
    v[c] = _mm512_loadu_si512(g + 64 * c);
    w[c] = _mm512_and_si512(v[c], m1f);
  }
  // w5 = X bits 0-4: v0 bits 5-7, v1 bits 5-6
  w[5] = _mm512_and_si512(
      _mm512_ternarylogic_epi32(_mm512_srli_epi16(v[0], 5), _mm512_srli_epi16(v[1], 2), m07, kSelect), m1f);
  // w6 = X bits 5-9: v1 bit 7, v2 bits 5-7, v3 bit 5
  const __m512i t = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v[1], 7), _mm512_srli_epi16(v[2], 4), m01, kSelect);
  w[6] = _mm512_and_si512(_mm512_ternarylogic_epi32(t, _mm512_srli_epi16(v[3], 1), m0f, kSelect), m1f);
  // w7 = X bits 10-14: v3 bits 6-7, v4 bits 5-7
  w[7] = _mm512_and_si512(
      _mm512_ternarylogic_epi32(_mm512_srli_epi16(v[3], 6), _mm512_srli_epi16(v[4], 3), m03, kSelect), m1f);
}

template <int T>
MOE_T void tile_q5_k(const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy, size_t pf) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i k6 = _mm512_set1_epi32(0x3f3f3f3f), k4 = _mm512_set1_epi32(0x0f0f0f0f),
                k2 = _mm512_set1_epi32(0x03030303);
  __m512i pick[4];
  for (int k = 0; k < 4; ++k) pick[k] = dword_bytes(k, 0x80, 0x80, 0x80);
  for (int64_t b = 0; b < nb; ++b, p += kRecQ5K, xg += T * kQ8KTokBlock) {
    const auto* act = reinterpret_cast<const ActQ8K*>(xg + 256 * T);
    const __m512 dw = load_ph16(p);
    const __m512i u0 = _mm512_loadu_si512(p + kQ4KScalesOff);
    const __m512i u2 = _mm512_loadu_si512(p + kQ4KScalesOff + 128);
    const __m512i s03 = _mm512_and_si512(u0, k6);
    const __m512i s47 = _mm512_or_si512(_mm512_and_si512(u2, k4),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), k2), 4));
    __m512 sb[T];
    for (int t = 0; t < T; ++t) sb[t] = _mm512_setzero_ps();
    for (int s = 0; s < 8; ++s) {
      const uint8_t* g = p + kQ4KQsOff + kQ5KGroupBytes * s;
      if (pf) prefetch_range<kQ5KGroupBytes>(g + pf);
      const __m512i sc = _mm512_shuffle_epi8(s < 4 ? s03 : s47, pick[s & 3]);
      const __m512 dsc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(sc));
      const uint8_t* xs = xg + 32 * s * T;
      __m512i w[8];
      q5_weights(g, w);
      for (int t = 0; t < T; ++t) {
        const uint8_t* xq = xs + 32 * t;
        __m512i a = dpbusd_bcast(_mm512_setzero_si512(), w[0], xq);
        for (int k = 1; k < 8; ++k) a = dpbusd_bcast(a, w[k], xq + 4 * k);
        sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), dsc, sb[t]);
      }
    }
    if (pf) prefetch_range<kQ4KQsOff>(p + pf);
    min_terms<T>(p, act, sb, acc);
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(Y + t * ldy, acc[t]);
}

template <int T>
MOE_T void tile_q5_k_n(int n, const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy,
                       size_t pf) {
  if constexpr (T > 1)
    if (n < T) return tile_q5_k_n<T - 1>(n, p, nb, xg, Y, ldy, pf);
  tile_q5_k<T>(p, nb, xg, Y, ldy, pf);
}

// ---- Q6_K (activations q8_K) ------------------------------------------------------------

// Per token and super-block: d_x and corr_u = -32 * sum of x_q over sub-block u
// (bsums[u]): the int32 start of sub-block u's accumulator, so that
// acc = sum (q6 - 32) * x_q with the unsigned q6 in vpdpbusd.
struct ActQ6K {
  float d;
  int32_t corr[16];
};
// A group of n tokens, regrouped: super-block b at b * n * kQ6KTokBlock holds sub-block
// u (16 quants) of token t at 16 (u n + t), then the n ActQ6K terms.
constexpr size_t kQ6KTokBlock = 256 + sizeof(ActQ6K);

MOE_T void prepass_q6_k(const uint8_t* X, size_t x_stride, int n, int64_t nb, uint8_t* dst) {
  for (int t = 0; t < n; ++t) {
    const auto* x = reinterpret_cast<const BlockQ8K*>(X + t * x_stride);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* d = dst + b * n * kQ6KTokBlock;
      for (int u = 0; u < 16; ++u) std::memcpy(d + 16 * (u * n + t), x[b].qs + 16 * u, 16);
      ActQ6K a;
      std::memcpy(&a.d, &x[b].d, 4);
      for (int u = 0; u < 16; ++u) a.corr[u] = -32 * x[b].bsums[u];
      std::memcpy(d + 256 * n + sizeof(ActQ6K) * t, &a, sizeof a);
    }
  }
}

template <int T>
MOE_T void tile_q6_k(const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy, size_t pf) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i m3f = _mm512_set1_epi8(0x3F), m03 = _mm512_set1_epi8(0x03), m0f = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b, p += kRecQ6K, xg += T * kQ6KTokBlock) {
    const auto* act = reinterpret_cast<const ActQ6K*>(xg + 256 * T);
    const __m512 dw = load_ph16(p);
    __m512 sb[T];
    for (int t = 0; t < T; ++t) sb[t] = _mm512_setzero_ps();
    for (int u = 0; u < 16; ++u) {
      // 3360 bytes per record: 14 x 256 covers them
      if (pf && u < 14) prefetch_range<256>(p + 256 * u + pf);
      const __m512i sc =
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kQ6KScalesOff + 16 * u)));
      const __m512 dsc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(sc));
      // weight vectors 0..2: the low 6 bits of the group's vectors; 3: their top 2 bits
      // (bits 6-7 of vector c become bits 2c, 2c+1; shifts by 6, 4, 2, then selects)
      const uint8_t* g = p + kQ6KQsOff + kQ6KGroupBytes * u;
      const __m512i v0 = _mm512_loadu_si512(g), v1 = _mm512_loadu_si512(g + 64), v2 = _mm512_loadu_si512(g + 128);
      const __m512i w0 = _mm512_and_si512(v0, m3f), w1 = _mm512_and_si512(v1, m3f), w2 = _mm512_and_si512(v2, m3f);
      const __m512i t = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v0, 6), _mm512_srli_epi16(v1, 4), m03, kSelect);
      const __m512i w3 =
          _mm512_and_si512(_mm512_ternarylogic_epi32(t, _mm512_srli_epi16(v2, 2), m0f, kSelect), m3f);
      const uint8_t* xs = xg + 16 * u * T;
      for (int t = 0; t < T; ++t) {
        const uint8_t* xq = xs + 16 * t;
        __m512i a = _mm512_set1_epi32(act[t].corr[u]);
        a = dpbusd_bcast(a, w0, xq);
        a = dpbusd_bcast(a, w1, xq + 4);
        a = dpbusd_bcast(a, w2, xq + 8);
        a = dpbusd_bcast(a, w3, xq + 12);
        sb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), dsc, sb[t]);
      }
    }
    for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(sb[t], _mm512_set1_ps(act[t].d), acc[t]);
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(Y + t * ldy, acc[t]);
}

template <int T>
MOE_T void tile_q6_k_n(int n, const uint8_t* p, int64_t nb, const uint8_t* xg, float* Y, int64_t ldy,
                       size_t pf) {
  if constexpr (T > 1)
    if (n < T) return tile_q6_k_n<T - 1>(n, p, nb, xg, Y, ldy, pf);
  tile_q6_k<T>(p, nb, xg, Y, ldy, pf);
}

}  // namespace

PackedGemmFn gemm_packed_avx512(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
      return gemm_tiles<kTokQ8, kRecQ4_0, kQ8TokBlock, prepass_q8_0<8>, tile_q8_0_n<true, kTokQ8>>;
    case GgmlType::Q8_0:
      return gemm_tiles<kTokQ8, kRecQ8_0, kQ8TokBlock, prepass_q8_0<128>, tile_q8_0_n<false, kTokQ8>>;
    case GgmlType::Q4_K:
      return gemm_tiles<kTokQ4K, kRecQ4K, kQ8KTokBlock, prepass_q8_k, tile_q4_k_n<kTokQ4K>>;
    case GgmlType::Q5_K:
      return gemm_tiles<kTokQ4K, kRecQ5K, kQ8KTokBlock, prepass_q8_k, tile_q5_k_n<kTokQ4K>>;
    case GgmlType::Q6_K:
      return gemm_tiles<kTokQ6K, kRecQ6K, kQ6KTokBlock, prepass_q6_k, tile_q6_k_n<kTokQ6K>>;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu
