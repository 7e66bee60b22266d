// Low-bit weight kernels (Q2_K, Q3_K, TQ1_0, TQ2_0, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS, IQ3_S, IQ4_XS) x q8_K on 256-bit vectors: the K structs that gemm_tiles of
// quant_simd_body.h runs. Included by quant_simd_body.h inside its namespace, after
// its helpers (MOE_T, dot_s16, bits_to_bytes, nibbles_32, h2f, load_f32), so it is
// compiled once per target like the body. Each unpacker produces the integer form of
// quant_lowbit.h; tests/ops/quant_lowbit_test.cpp checks every type on every path.
#pragma once

// ---- 256-element low-bit blocks (quant_lowbit.h) x q8_K ------------------------
// x = d * sc * w - dmin * mn per 16 elements, w int8 with |w| <= 127:
// sum(w*qx) = sum(|w| * sign(qx, w)); maddubs pairs <= 2*127*127 = 32258 (no
// saturation, qx >= -127), times |sc| <= 32 per vpdpwssd/madd lane, 8 groups: < 2^31.
struct LowU {
  __m256i w[8], aw[8];  // 32-element group g: w and |w|
  __m256i sc[8];        // int16 lanes 0..7 = sc[2g], 8..15 = sc[2g+1]
  __m256i mn;           // int16 lane k = mn[k] (pairs with bsums[k])
  float d, dmin;
};
// kMin: Q2_K's min term; it is also the one type with w >= 0, multiplied unsigned directly.
template <bool kMin>
MOE_T void lowbit_dot(const LowU& u, const BlockQ8K& x, __m256& acc) {
  __m256i sumi = _mm256_setzero_si256();
  for (int g = 0; g < 8; ++g) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * g));
    const __m256i xs = kMin ? xv : _mm256_sign_epi8(xv, u.w[g]);
    sumi = dot_s16(sumi, _mm256_maddubs_epi16(u.aw[g], xs), u.sc[g]);
  }
  const float dx = load_f32(&x.d);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(u.d * dx), acc);
  if constexpr (kMin) {
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, u.mn)), _mm256_set1_ps(u.dmin * dx), acc);
  }
}
MOE_T void lowbit_scales(const int16_t* sc, LowU& u) {  // sc[16], one per 16 elements
  for (int g = 0; g < 8; ++g) u.sc[g] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
}
// 8 grid entries' magnitudes m (bytes) with signs from 32 bits (bit e = element e
// negative): w = (m ^ s) - s with s = 0xFF where negative.
MOE_T void signed_grid(__m256i m, uint32_t sign_bits, __m256i& w, __m256i& aw) {
  const __m256i s = bits_to_bytes(reinterpret_cast<const uint8_t*>(&sign_bits));
  aw = m;
  w = _mm256_sub_epi8(_mm256_xor_si256(m, s), s);
}

// Vector unpackers, one per type, into the integer form of quant_lowbit.h (the same
// as quant_lowbit_unpack.cpp; tests compare both with the reference).
// Element e = 128h + 32j + l of Q2_K/Q3_K/TQ2_0: bits 2j of qs[32h + l].
struct KQ2_Kv {
  using W = BlockQ2K;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
      for (int j = 0; j < 4; ++j) {
        u.w[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        u.aw[4 * h + j] = u.w[4 * h + j];
      }
    }
    // scale bytes (low nibbles) in both lanes; group g takes byte 2g (low lane) and
    // 2g+1 (high lane) into every int16 lane
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i lo = _mm_and_si128(sc8, _mm_set1_epi8(15));
    const __m256i both = _mm256_set_m128i(lo, lo);
    for (int g = 0; g < 8; ++g) {
      const __m256i ctl = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(0xFF00 | (2 * g + 1))),
                                           _mm_set1_epi16(static_cast<int16_t>(0xFF00 | (2 * g))));
      u.sc[g] = _mm256_shuffle_epi8(both, ctl);
    }
    u.mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15)));
    u.d = h2f(b.d);
    u.dmin = h2f(b.dmin);
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<true>(u, x, acc); }
};

// Q3_K: w = q2 | (hmask bit 4h + j of byte l) << 2, minus 4; 6-bit scales minus 32.
struct KQ3_Kv {
  using W = BlockQ3K;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
      for (int j = 0; j < 4; ++j) {
        const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * h + j)));
        const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
        const __m256i w = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3), hi), four);
        u.w[4 * h + j] = w;
        u.aw[4 * h + j] = _mm256_abs_epi8(w);
      }
    }
    int16_t sc[16];
    for (int k = 0; k < 16; ++k) {
      const int lo = k < 8 ? b.scales[k] & 15 : b.scales[k - 8] >> 4;
      const int hi = (b.scales[8 + k % 4] >> (2 * (k / 4))) & 3;
      sc[k] = static_cast<int16_t>((lo | hi << 4) - 32);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d);
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ4_XS: w = kIq4nlValues[nibble] (table shuffle), 6-bit scale - 32 per 32 elements.
struct KIQ4_XSv {
  using W = BlockIQ4XS;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
    const __m256i tab = _mm256_set_m128i(t, t);
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      u.w[ib] = _mm256_shuffle_epi8(tab, nibbles_32(b.qs + 16 * ib));
      u.aw[ib] = _mm256_abs_epi8(u.w[ib]);
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | ((b.scales_h >> (2 * ib)) & 3) << 4;
      sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(ls - 32);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d);
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ2_XXS: per 32 elements 4 grid entries (8 magnitudes each) and 4 x 7 sign bits.
struct KIQ2_XXSv {
  using W = BlockIQ2XXS;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      uint8_t idx[4];
      uint32_t s;
      std::memcpy(idx, &b.qs[4 * ib], 4);
      std::memcpy(&s, &b.qs[4 * ib + 2], 4);
      const __m256i m = _mm256_set_epi64x(static_cast<int64_t>(kIq2xxsGrid[idx[3]]), static_cast<int64_t>(kIq2xxsGrid[idx[2]]),
                                          static_cast<int64_t>(kIq2xxsGrid[idx[1]]), static_cast<int64_t>(kIq2xxsGrid[idx[0]]));
      const uint32_t signs = static_cast<uint32_t>(iq_signs8(s)) | static_cast<uint32_t>(iq_signs8(s >> 7)) << 8 |
                             static_cast<uint32_t>(iq_signs8(s >> 14)) << 16 | static_cast<uint32_t>(iq_signs8(s >> 21)) << 24;
      signed_grid(m, signs, u.w[ib], u.aw[ib]);
      sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * (s >> 28) + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d) * 0.125f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ3_XXS: per 32 elements 8 grid entries (4 magnitudes each), signs and scale in a u32.
struct KIQ3_XXSv {
  using W = BlockIQ3XXS;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = b.qs + 8 * ib;
      uint32_t s;
      std::memcpy(&s, &b.qs[64 + 4 * ib], 4);
      const __m256i m = _mm256_set_epi32(
          static_cast<int>(kIq3xxsGrid[q[7]]), static_cast<int>(kIq3xxsGrid[q[6]]), static_cast<int>(kIq3xxsGrid[q[5]]),
          static_cast<int>(kIq3xxsGrid[q[4]]), static_cast<int>(kIq3xxsGrid[q[3]]), static_cast<int>(kIq3xxsGrid[q[2]]),
          static_cast<int>(kIq3xxsGrid[q[1]]), static_cast<int>(kIq3xxsGrid[q[0]]));
      const uint32_t signs = static_cast<uint32_t>(iq_signs8(s)) | static_cast<uint32_t>(iq_signs8(s >> 7)) << 8 |
                             static_cast<uint32_t>(iq_signs8(s >> 14)) << 16 | static_cast<uint32_t>(iq_signs8(s >> 21)) << 24;
      signed_grid(m, signs, u.w[ib], u.aw[ib]);
      sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * (s >> 28) + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d) * 0.25f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// TQ2_0: w = q - 1 with q in bits 2j of qs[32h + l]; every scale 1.
struct KTQ2_0v {
  using W = BlockTQ2_0;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
      for (int j = 0; j < 4; ++j) {
        u.w[4 * h + j] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3), one);
        u.aw[4 * h + j] = _mm256_abs_epi8(u.w[4 * h + j]);
        u.sc[4 * h + j] = _mm256_set1_epi16(1);
      }
    }
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d);
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// TQ1_0: base-3 digit n of byte b is ((b * 3^n mod 256) * 3) >> 8; per byte with 16-bit
// multiplies on the even and odd bytes (pow: int16 lanes, the same for both bytes).
MOE_T __m256i ternary_digits(__m256i v, __m256i pow) {
  const __m256i ff = _mm256_set1_epi16(0xFF), three = _mm256_set1_epi16(3);
  const __m256i ql = _mm256_and_si256(_mm256_mullo_epi16(_mm256_and_si256(v, ff), pow), ff);
  const __m256i qh = _mm256_and_si256(_mm256_mullo_epi16(_mm256_srli_epi16(v, 8), pow), ff);
  const __m256i dl = _mm256_srli_epi16(_mm256_mullo_epi16(ql, three), 8);
  const __m256i dh = _mm256_srli_epi16(_mm256_mullo_epi16(qh, three), 8);
  return _mm256_or_si256(dl, _mm256_slli_epi16(dh, 8));
}
// Elements: qs[0..31] digit n -> 32n + m (groups 0..4); qs[32..47] digit n -> 160 + 16n + m
// (groups 5, 6 and the first half of 7); qh[m] digit n -> 240 + 4n + m.
struct KTQ1_0v {
  using W = BlockTQ1_0;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    static constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
    for (int n = 0; n < 5; ++n) u.w[n] = ternary_digits(v0, _mm256_set1_epi16(kPow3[n]));
    const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32));
    const __m256i v11 = _mm256_set_m128i(v1, v1);
    u.w[5] = ternary_digits(v11, _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(1)));
    u.w[6] = ternary_digits(v11, _mm256_set_m128i(_mm_set1_epi16(27), _mm_set1_epi16(9)));
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    const __m128i qh4 = _mm_set1_epi32(static_cast<int>(qh));  // byte 4n + m = qh[m]
    u.w[7] = ternary_digits(_mm256_set_m128i(qh4, v1), _mm256_set_epi16(27, 27, 9, 9, 3, 3, 1, 1, 81, 81, 81, 81, 81, 81,
                                                                         81, 81));
    for (int g = 0; g < 8; ++g) {
      u.w[g] = _mm256_sub_epi8(u.w[g], one);
      u.aw[g] = _mm256_abs_epi8(u.w[g]);
      u.sc[g] = _mm256_set1_epi16(1);
    }
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d);
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

MOE_T __m256i grid4x64(uint64_t g0, uint64_t g1, uint64_t g2, uint64_t g3) {
  return _mm256_set_epi64x(static_cast<int64_t>(g3), static_cast<int64_t>(g2), static_cast<int64_t>(g1),
                           static_cast<int64_t>(g0));
}

// IQ2_XS: per 8 elements a u16: 9-bit grid index, 7 sign bits; 4-bit scale per 16.
struct KIQ2_XSv {
  using W = BlockIQ2XS;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t* q = b.qs + 4 * ib;
      const __m256i m = grid4x64(kIq2xsGrid[q[0] & 511], kIq2xsGrid[q[1] & 511], kIq2xsGrid[q[2] & 511],
                                 kIq2xsGrid[q[3] & 511]);
      const uint32_t signs = static_cast<uint32_t>(iq_signs8(q[0] >> 9)) | static_cast<uint32_t>(iq_signs8(q[1] >> 9)) << 8 |
                             static_cast<uint32_t>(iq_signs8(q[2] >> 9)) << 16 |
                             static_cast<uint32_t>(iq_signs8(q[3] >> 9)) << 24;
      signed_grid(m, signs, u.w[ib], u.aw[ib]);
      sc[2 * ib] = static_cast<int16_t>(2 * (b.scales[ib] & 15) + 1);
      sc[2 * ib + 1] = static_cast<int16_t>(2 * (b.scales[ib] >> 4) + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d) * 0.125f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ2_S: 10-bit index (qs + 2 bits of qh), sign bytes qs[32 ..]; scales as IQ2_XS.
struct KIQ2_Sv {
  using W = BlockIQ2S;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = b.qs + 4 * ib;
      const int h = b.qh[ib];
      const __m256i m = grid4x64(kIq2sGrid[q[0] | (h & 3) << 8], kIq2sGrid[q[1] | ((h >> 2) & 3) << 8],
                                 kIq2sGrid[q[2] | ((h >> 4) & 3) << 8], kIq2sGrid[q[3] | ((h >> 6) & 3) << 8]);
      uint32_t signs;
      std::memcpy(&signs, b.qs + 32 + 4 * ib, 4);
      signed_grid(m, signs, u.w[ib], u.aw[ib]);
      sc[2 * ib] = static_cast<int16_t>(2 * (b.scales[ib] & 15) + 1);
      sc[2 * ib + 1] = static_cast<int16_t>(2 * (b.scales[ib] >> 4) + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d) * 0.125f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ3_S: index k = qs[k] | bit k % 8 of qh[k / 8] << 8 (4 elements each); sign bytes.
struct KIQ3_Sv {
  using W = BlockIQ3S;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = b.qs + 8 * ib;
      const int h = b.qh[ib];
      int g[8];
      for (int k = 0; k < 8; ++k) g[k] = static_cast<int>(kIq3sGrid[q[k] | ((h >> k) & 1) << 8]);
      const __m256i m = _mm256_set_epi32(g[7], g[6], g[5], g[4], g[3], g[2], g[1], g[0]);
      uint32_t signs;
      std::memcpy(&signs, b.signs + 4 * ib, 4);
      signed_grid(m, signs, u.w[ib], u.aw[ib]);
      const int s4 = ib % 2 == 0 ? b.scales[ib / 2] & 15 : b.scales[ib / 2] >> 4;
      sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * s4 + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d);
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

// IQ1_S / IQ1_M: w = 8 * grid + delta, grid int8 in {-1, 0, 1}, delta = +-1 per 32
// (IQ1_S) or per 8 (IQ1_M) elements.
MOE_T void iq1_group(__m256i grid, __m256i delta, __m256i& w, __m256i& aw) {
  const __m256i g2 = _mm256_add_epi8(grid, grid), g4 = _mm256_add_epi8(g2, g2);
  w = _mm256_add_epi8(_mm256_add_epi8(g4, g4), delta);
  aw = _mm256_abs_epi8(w);
}
struct KIQ1_Sv {
  using W = BlockIQ1S;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    int16_t sc[16];
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = b.qs + 4 * ib;
      const int h = b.qh[ib];
      const __m256i m = grid4x64(kIq1sGrid[q[0] | (h & 7) << 8], kIq1sGrid[q[1] | ((h >> 3) & 7) << 8],
                                 kIq1sGrid[q[2] | ((h >> 6) & 7) << 8], kIq1sGrid[q[3] | ((h >> 9) & 7) << 8]);
      iq1_group(m, _mm256_set1_epi8(h & 0x8000 ? -1 : 1), u.w[ib], u.aw[ib]);
      sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * ((h >> 12) & 7) + 1);
    }
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    u.d = h2f(b.d) * 0.125f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};
struct KIQ1_Mv {
  using W = BlockIQ1M;
  using X = BlockQ8K;
  using U = LowU;
  static constexpr int kBlock = 256;
  static MOE_T void unpack(const W& b, U& u) {
    uint16_t s[4];
    std::memcpy(s, b.scales, 8);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = b.qs + 4 * ib;
      const int h0 = b.qh[2 * ib], h1 = b.qh[2 * ib + 1];
      const __m256i m = grid4x64(kIq1sGrid[q[0] | (h0 & 7) << 8], kIq1sGrid[q[1] | ((h0 >> 4) & 7) << 8],
                                 kIq1sGrid[q[2] | (h1 & 7) << 8], kIq1sGrid[q[3] | ((h1 >> 4) & 7) << 8]);
      auto dl = [](bool neg) { return neg ? int64_t{-1} : int64_t{0x0101010101010101}; };
      const __m256i delta = _mm256_set_epi64x(dl(h1 & 0x80), dl(h1 & 0x08), dl(h0 & 0x80), dl(h0 & 0x08));
      iq1_group(m, delta, u.w[ib], u.aw[ib]);
    }
    int16_t sc[16];
    for (int t = 0; t < 16; ++t) sc[t] = static_cast<int16_t>(2 * ((s[t / 4] >> (3 * (t % 4))) & 7) + 1);
    lowbit_scales(sc, u);
    u.mn = _mm256_setzero_si256();
    const uint16_t dbits =
        static_cast<uint16_t>((s[0] >> 12) | (s[1] >> 12) << 4 | (s[2] >> 12) << 8 | (s[3] >> 12) << 12);
    u.d = h2f(dbits) * 0.125f;
    u.dmin = 0.f;
  }
  static MOE_T void dot(const U& u, const X& x, __m256& acc, float&) { lowbit_dot<false>(u, x, acc); }
};

