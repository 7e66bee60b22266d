// Integer-dot kernels of the quantized weight types on 256-bit vectors, written
// once and compiled twice: quant_avx2.cpp (AVX2 + FMA + F16C: maddubs/madd) and
// quant_avx512.cpp (AVX-512 VL/BW + VNNI: vpdpbusd/vpdpwssd, k-mask bit expansion).
// The including file defines MOE_SIMD_TARGET (a target attribute), MOE_SIMD_NS,
// MOE_SIMD_AVX512 (0/1), MOE_TILE_R/MOE_TILE_T, and includes <immintrin.h> first.
// Tiles of TR weight rows x TT tokens: each weight block is unpacked once and used
// for TT tokens. Per (row, token) an 8-lane f32 accumulator gets, per block,
// float(sum_i q_w q_x) * d_w * d_x; integer sums are exact (ranges noted inline).
// NOTES: every function carries MOE_SIMD_TARGET so that nothing here is compiled
// for, or inlined into, code that runs on a CPU without these instructions.

namespace moe::ops::cpu::MOE_SIMD_NS {
namespace {

#define MOE_T MOE_SIMD_TARGET inline

MOE_T float h2f(uint16_t h) { return _cvtsh_ss(h); }
MOE_T float load_f32(const float* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

MOE_T float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum of u8 x s8 products, 4 per int32 lane: VNNI vpdpbusd, else maddubs + madd.
// AVX2 maddubs saturates int16 pairs: callers keep 2 * max(u) * 127 <= 32767.
MOE_T __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if MOE_SIMD_AVX512
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// acc += pairwise int16 products (vpdpwssd / madd).
MOE_T __m256i dot_s16(__m256i acc, __m256i a, __m256i b) {
#if MOE_SIMD_AVX512
  return _mm256_dpwssd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// 16 bytes of nibble pairs -> 32 bytes: low nibbles in bytes 0..15, high in 16..31.
MOE_T __m256i nibbles_32(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// 32 bits (little-endian bytes) -> 32 bytes, 0xFF where the bit is set.
MOE_T __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t b;
  std::memcpy(&b, p, 4);
#if MOE_SIMD_AVX512
  return _mm256_movm_epi8(static_cast<__mmask32>(b));
#else
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                         0x0101010101010101, 0x0000000000000000);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(b)), shuf);
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));  // all bits but bit j of byte j
  return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
#endif
}

// ---- q8_0 partner: weights as signed int8 w, |w| <= 128 -------------------------
// sum(w*x) = sum(|w| * sign(x, w)): u8 x s8 products, maddubs pairs <= 2*128*127.
struct Q8U {
  __m256i w, aw;
  float d;
};
MOE_T void dot_q8(const Q8U& u, const BlockQ8_0& x, __m256& acc, float&) {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i s = dot_u8s8(_mm256_setzero_si256(), u.aw, _mm256_sign_epi8(xv, u.w));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(u.d * h2f(x.d)), acc);
}

struct KQ8_0 {
  using W = BlockQ8_0;
  using X = BlockQ8_0;
  using U = Q8U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    u.w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    u.aw = _mm256_abs_epi8(u.w);
    u.d = h2f(b.d);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) { dot_q8(u, x, acc, s); }
};
struct KQ4_0 {  // w = q - 8
  using W = BlockQ4_0;
  using X = BlockQ8_0;
  using U = Q8U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    u.w = _mm256_sub_epi8(nibbles_32(b.qs), _mm256_set1_epi8(8));
    u.aw = _mm256_abs_epi8(u.w);
    u.d = h2f(b.d);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) { dot_q8(u, x, acc, s); }
};
struct KQ5_0 {  // w = q5 - 16 = nibble | (bit4 clear ? 0xF0 : 0)
  using W = BlockQ5_0;
  using X = BlockQ8_0;
  using U = Q8U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    u.w = _mm256_or_si256(nibbles_32(b.qs), hi);
    u.aw = _mm256_abs_epi8(u.w);
    u.d = h2f(b.d);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) { dot_q8(u, x, acc, s); }
};
struct KMxfp4 {  // w = 2 * E2M1 (int8 table lookup), d = 2^(e - 128)
  using W = BlockMxfp4;
  using X = BlockQ8_0;
  using U = Q8U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kE2M1x2));
    u.w = _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles_32(b.qs));
    u.aw = _mm256_abs_epi8(u.w);
    u.d = bits_to_f32(b.e < 2 ? 0x00200000u << b.e : static_cast<uint32_t>(b.e - 1) << 23);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) { dot_q8(u, x, acc, s); }
};

struct KIq4nl {  // w = kIq4nlValues[nibble] (int8 table lookup)
  using W = BlockIQ4NL;
  using X = BlockQ8_0;
  using U = Q8U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
    u.w = _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles_32(b.qs));
    u.aw = _mm256_abs_epi8(u.w);
    u.d = h2f(b.d);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) { dot_q8(u, x, acc, s); }
};

// ---- q8_1 partner: x = d*q + m, dot = d*dx*sum(q*qx) + m*sx; q <= 31 ------------
struct Q8_1U {
  __m256i q;
  float d, m;
};
template <int kBits, class Block>
struct KQx_1 {
  using W = Block;
  using X = BlockQ8_1;
  using U = Q8_1U;
  static constexpr int kBlock = 32;
  static MOE_T void unpack(const W& b, U& u) {
    u.q = nibbles_32(b.qs);
    if constexpr (kBits == 5)
      u.q = _mm256_or_si256(u.q, _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
    u.d = h2f(b.d);
    u.m = h2f(b.m);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float& s) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
    const __m256i p = dot_u8s8(_mm256_setzero_si256(), u.q, xv);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(u.d * h2f(x.d)), acc);
    s += u.m * h2f(x.s);
  }
};

// ---- q8_K partner ----------------------------------------------------------------
// Q4_K / Q5_K: dot = dx * (d * sum_s sc_s sum(q*qx) - dmin * sum_s m_s (bsums[2s] + bsums[2s+1])).
// maddubs pairs <= 2*31*127 = 7874, times sc <= 63 in int32.
struct QKU {
  __m256i q[8];   // sub-block s, unsigned 0..31
  __m256i mins;   // int16 lanes 2s, 2s+1 = m_s (pairs with bsums[2s], bsums[2s+1])
  int16_t sc[8];
  float d, dmin;
};
template <int kBits, class Block>
struct KQx_K {
  using W = Block;
  using X = BlockQ8K;
  using U = QKU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    alignas(32) int16_t mins[16];
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      k_scale_min(s, b.scales, sc, m);
      u.sc[s] = sc;
      mins[2 * s] = mins[2 * s + 1] = m;
    }
    u.mins = _mm256_load_si256(reinterpret_cast<const __m256i*>(mins));
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kBits == 5) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    for (int c = 0; c < 4; ++c) {  // chunk c: low nibbles -> sub-block 2c, high -> 2c+1
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
      __m256i lo = _mm256_and_si256(v, lo4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
      if constexpr (kBits == 5) {  // 5th bit: bit 2c / 2c+1 of qh[l]
        const __m256i b0 = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
        const __m256i b1 = _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1)));
        const __m256i x10 = _mm256_set1_epi8(0x10);
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b0), b0), x10));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b1), b1), x10));
      }
      u.q[2 * c] = lo;
      u.q[2 * c + 1] = hi;
    }
    u.d = h2f(b.d);
    u.dmin = h2f(b.dmin);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) {
    __m256i sumi = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * s));
      sumi = dot_s16(sumi, _mm256_maddubs_epi16(u.q[s], xv), _mm256_set1_epi16(u.sc[s]));
    }
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
    const __m256i summ = _mm256_madd_epi16(bs, u.mins);
    const float dx = load_f32(&x.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(u.d * dx), acc);
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(u.dmin * dx), acc);
  }
};

// Q6_K: q6 unsigned 0..63 (maddubs pairs <= 2*63*127 = 16002), x = d*sc*(q6 - 32):
// sum_k sc_k sum(q6*qx) - 32 * sum_k sc_k bsums[k].
struct Q6KU {
  __m256i q[8];    // elements 32g..32g+31, natural order
  __m256i sc[8];   // int16 lanes 0..7 = sc[2g], 8..15 = sc[2g+1]
  __m256i scall;   // int16 lane k = sc[k]
  float d;
};
struct KQ6_K {
  using W = BlockQ6K;
  using X = BlockQ8K;
  using U = Q6KU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    for (int n = 0; n < 2; ++n) {  // half n: ql += 64n, qh += 32n
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * n));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * n + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * n));
      auto h = [&](int shift) MOE_SIMD_TARGET {  // ((qh >> shift) & 3) << 4
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), m2), 4);
      };
      u.q[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), h(0));
      u.q[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), h(2));
      u.q[4 * n + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), h(4));
      u.q[4 * n + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), h(6));
    }
    for (int g = 0; g < 8; ++g)
      u.sc[g] = _mm256_set_m128i(_mm_set1_epi16(b.scales[2 * g + 1]), _mm_set1_epi16(b.scales[2 * g]));
    u.scall = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    u.d = h2f(b.d);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) {
    __m256i sumi = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * g));
      sumi = dot_s16(sumi, _mm256_maddubs_epi16(u.q[g], xv), u.sc[g]);
    }
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(bs, u.scall), 5));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(u.d * load_f32(&x.d)), acc);
  }
};

#include "ops/cpu/quant_simd_lowbit.h"  // the low-bit K structs: part of this body

// Y[t*ldy + r] = dot(W_r, X_t) in tiles of TR rows x TT tokens.
template <class K>
MOE_T void gemm_tiles(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m,
                      float* Y, int64_t ldy, int64_t nr, int64_t n) {
  constexpr int TR = MOE_TILE_R, TT = MOE_TILE_T;
  const int64_t nb = n / K::kBlock;
  const auto* wbase = static_cast<const uint8_t*>(W);
  const auto* xbase = static_cast<const uint8_t*>(X);
  typename K::U u[TR] = {};  // rows >= R stay unused
  for (int64_t r = 0; r < nr; r += TR) {
    const int R = nr - r < TR ? static_cast<int>(nr - r) : TR;
    for (int64_t t = 0; t < m; t += TT) {
      const int T = m - t < TT ? static_cast<int>(m - t) : TT;
      __m256 acc[TR][TT];
      float accs[TR][TT];
      for (int i = 0; i < TR; ++i)
        for (int j = 0; j < TT; ++j) {
          acc[i][j] = _mm256_setzero_ps();
          accs[i][j] = 0.f;
        }
      for (int64_t b = 0; b < nb; ++b) {
        for (int i = 0; i < TR; ++i)
          if (i < R) K::unpack(reinterpret_cast<const typename K::W*>(wbase + (r + i) * row_stride)[b], u[i]);
        for (int j = 0; j < TT; ++j) {
          if (j >= T) break;
          const auto& xb = reinterpret_cast<const typename K::X*>(xbase + (t + j) * x_stride)[b];
          for (int i = 0; i < TR; ++i)
            if (i < R) K::dot(u[i], xb, acc[i][j], accs[i][j]);
        }
      }
      for (int j = 0; j < T; ++j)
        for (int i = 0; i < R; ++i) Y[(t + j) * ldy + r + i] = hsum(acc[i][j]) + accs[i][j];
    }
  }
}

#undef MOE_T

}  // namespace

GemmFn select(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return gemm_tiles<KQ8_0>;
    case GgmlType::Q4_0: return gemm_tiles<KQ4_0>;
    case GgmlType::Q5_0: return gemm_tiles<KQ5_0>;
    case GgmlType::MXFP4: return gemm_tiles<KMxfp4>;
    case GgmlType::Q4_1: return gemm_tiles<KQx_1<4, BlockQ4_1>>;
    case GgmlType::Q5_1: return gemm_tiles<KQx_1<5, BlockQ5_1>>;
    case GgmlType::Q4_K: return gemm_tiles<KQx_K<4, BlockQ4K>>;
    case GgmlType::Q5_K: return gemm_tiles<KQx_K<5, BlockQ5K>>;
    case GgmlType::Q6_K: return gemm_tiles<KQ6_K>;
    case GgmlType::IQ4_NL: return gemm_tiles<KIq4nl>;
    case GgmlType::Q2_K: return gemm_tiles<KQ2_Kv>;
    case GgmlType::Q3_K: return gemm_tiles<KQ3_Kv>;
    case GgmlType::TQ1_0: return gemm_tiles<KTQ1_0v>;
    case GgmlType::TQ2_0: return gemm_tiles<KTQ2_0v>;
    case GgmlType::IQ1_S: return gemm_tiles<KIQ1_Sv>;
    case GgmlType::IQ1_M: return gemm_tiles<KIQ1_Mv>;
    case GgmlType::IQ2_XXS: return gemm_tiles<KIQ2_XXSv>;
    case GgmlType::IQ2_XS: return gemm_tiles<KIQ2_XSv>;
    case GgmlType::IQ2_S: return gemm_tiles<KIQ2_Sv>;
    case GgmlType::IQ3_XXS: return gemm_tiles<KIQ3_XXSv>;
    case GgmlType::IQ3_S: return gemm_tiles<KIQ3_Sv>;
    case GgmlType::IQ4_XS: return gemm_tiles<KIQ4_XSv>;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu::MOE_SIMD_NS
