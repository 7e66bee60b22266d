// Scalar reference decoders of the low-bit weight types, each the element formula of
// the GGUF/ggml block layout written out literally (layouts in ops/cpu/quant_blocks.h,
// grids in iq_grids.cpp). Element order inside a 256-block, in words:
//   Q2_K, Q3_K, TQ2_0: element e = 128h + 32j + l takes bits 2j..2j+1 of qs[32h + l];
//     Q2_K/Q3_K scale index e / 16.  Q3_K: the high bit is bit (4h + j) of hmask[l].
//   TQ1_0: qs[0..31] hold elements 0..159 (digit n of byte m -> element 32n + m),
//     qs[32..47] elements 160..239 (160 + 16n + m), qh[0..3] elements 240..255 (240 + 4n + m);
//     digit n of byte q is ((q * 3^n mod 256) * 3) >> 8.
//   IQ*: groups of 8 consecutive elements per grid entry (IQ3: two entries of 4).
// Invariant: no decoder reads outside its nb blocks; every index is masked to its table.
#include "ops/reference/quant_lowbit_ref.h"

#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/reference/iq_grids.h"

namespace moe::ops::ref {
namespace {

float h2f(uint16_t h) { return fp16_to_f32(h); }
float sign_of(uint8_t signs, int j) { return (signs >> j) & 1 ? -1.f : 1.f; }

void dequant_q2_k(const BlockQ2K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
      const uint8_t sc = b[i].scales[e / 16];
      y[e] = d * static_cast<float>(sc & 15) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
    }
  }
}

// 6-bit scale k (0..15) of a Q3_K block: low 4 bits in the nibbles of bytes 0..7,
// high 2 bits in bytes 8..11.
int q3_k_scale(const uint8_t* s, int k) {
  const int lo = k < 8 ? s[k] & 15 : s[k - 8] >> 4;
  const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (lo | hi << 4) - 32;
}

void dequant_q3_k(const BlockQ3K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    const float d = h2f(b[i].d);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q2 = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
      const bool high = (b[i].hmask[l] >> (4 * h + j)) & 1;
      y[e] = d * static_cast<float>(q3_k_scale(b[i].scales, e / 16)) * static_cast<float>(q2 - (high ? 0 : 4));
    }
  }
}

int base3_digit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = static_cast<uint8_t>(byte * kPow3[n]);  // mod 256
  return (q * 3) >> 8;
}

void dequant_tq1_0(const BlockTQ1_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    const float d = h2f(b[i].d);
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 32; ++m) y[32 * n + m] = d * static_cast<float>(base3_digit(b[i].qs[m], n) - 1);
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 16; ++m)
        y[160 + 16 * n + m] = d * static_cast<float>(base3_digit(b[i].qs[32 + m], n) - 1);
    for (int n = 0; n < 4; ++n)
      for (int m = 0; m < 4; ++m) y[240 + 4 * n + m] = d * static_cast<float>(base3_digit(b[i].qh[m], n) - 1);
  }
}

void dequant_tq2_0(const BlockTQ2_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    const float d = h2f(b[i].d);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      y[e] = d * static_cast<float>(((b[i].qs[32 * h + l] >> (2 * j)) & 3) - 1);
    }
  }
}

// IQ2_XXS: per 32 elements two little-endian u32: a = 4 grid indices (one byte each),
// s = 4 x 7 sign bits (bits 7l..7l+6) and the scale in bits 28..31:
// x = d * (0.5 + scale) / 4 * grid * sign.
void dequant_iq2_xxs(const BlockIQ2XXS* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      uint8_t idx[4];
      uint32_t s;
      std::memcpy(idx, &b[i].qs[4 * ib], 4);
      std::memcpy(&s, &b[i].qs[4 * ib + 2], 4);
      const float db = d * (0.5f + static_cast<float>(s >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = iq_signs8(s >> (7 * l));
        for (int j = 0; j < 8; ++j) y[j] = db * grid_byte(kIq2xxsGrid[idx[l]], j) * sign_of(signs, j);
      }
    }
  }
}

// IQ2_XS: per 8 elements a u16: grid index in bits 0..8, 7 sign bits in 9..15;
// 4-bit scale per 16 elements (low nibble of scales[ib] for the first 16 of 32).
void dequant_iq2_xs(const BlockIQ2XS* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib)
      for (int l = 0; l < 4; ++l, y += 8) {
        const int s = l < 2 ? b[i].scales[ib] & 15 : b[i].scales[ib] >> 4;
        const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
        const uint16_t q = b[i].qs[4 * ib + l];
        const uint8_t signs = iq_signs8(q >> 9);
        for (int j = 0; j < 8; ++j) y[j] = db * grid_byte(kIq2xsGrid[q & 511], j) * sign_of(signs, j);
      }
  }
}

// IQ2_S: grid index = qs[4ib + l] | bits (2l, 2l+1) of qh[ib] as bits 8, 9; the 8 signs
// of group (ib, l) are byte qs[32 + 4ib + l]; scales as IQ2_XS.
void dequant_iq2_s(const BlockIQ2S* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib)
      for (int l = 0; l < 4; ++l, y += 8) {
        const int s = l < 2 ? b[i].scales[ib] & 15 : b[i].scales[ib] >> 4;
        const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
        const int idx = b[i].qs[4 * ib + l] | ((b[i].qh[ib] >> (2 * l)) & 3) << 8;
        const uint8_t signs = b[i].qs[32 + 4 * ib + l];
        for (int j = 0; j < 8; ++j) y[j] = db * grid_byte(kIq2sGrid[idx], j) * sign_of(signs, j);
      }
  }
}

// IQ3_XXS: qs[0..63] are grid indices (two per 8 elements); qs[64 + 4ib ..] a u32 per
// 32 elements: 4 x 7 sign bits and the scale in bits 28..31: x = d * (0.5 + s) / 2 * grid * sign.
void dequant_iq3_xxs(const BlockIQ3XXS* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t s;
      std::memcpy(&s, &b[i].qs[64 + 4 * ib], 4);
      const float db = d * (0.5f + static_cast<float>(s >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = iq_signs8(s >> (7 * l));
        const uint32_t g0 = kIq3xxsGrid[b[i].qs[8 * ib + 2 * l]], g1 = kIq3xxsGrid[b[i].qs[8 * ib + 2 * l + 1]];
        for (int j = 0; j < 4; ++j) {
          y[j] = db * static_cast<float>((g0 >> (8 * j)) & 255) * sign_of(signs, j);
          y[j + 4] = db * static_cast<float>((g1 >> (8 * j)) & 255) * sign_of(signs, j + 4);
        }
      }
    }
  }
}

// IQ3_S: 4 elements per index; index k (0..63) = qs[k] | bit (k % 8) of qh[k / 8] as bit 8;
// signs byte signs[k / 2] covers 8 elements; x = d * (1 + 2 s) * grid * sign with the
// 4-bit s of 32 elements (low nibble of scales[ib / 2] for even ib).
void dequant_iq3_s(const BlockIQ3S* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    const float d = h2f(b[i].d);
    for (int e = 0; e < 256; ++e) {
      const int k = e / 4, ib = e / 32;
      const int idx = b[i].qs[k] | ((b[i].qh[k / 8] >> (k % 8)) & 1) << 8;
      const int s = ib % 2 == 0 ? b[i].scales[ib / 2] & 15 : b[i].scales[ib / 2] >> 4;
      const float g = static_cast<float>((kIq3sGrid[idx] >> (8 * (e % 4))) & 255);
      y[e] = d * static_cast<float>(1 + 2 * s) * g * sign_of(b[i].signs[e / 8], e % 8);
    }
  }
}

float iq1_grid(int idx, int j) { return static_cast<float>(static_cast<int8_t>(grid_byte(kIq1sGrid[idx], j))); }

// IQ1_S: per 32 elements a u16 qh: bits 3l..3l+2 are bits 8..10 of group l's index,
// bits 12..14 the scale s, bit 15 the delta sign: x = d * (2s + 1) * (grid +- 1/8).
void dequant_iq1_s(const BlockIQ1S* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = b[i].qh[ib];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -0.125f : 0.125f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const int idx = b[i].qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8;
        for (int j = 0; j < 8; ++j) y[j] = dl * (iq1_grid(idx, j) + delta);
      }
    }
  }
}

// IQ1_M: group g (8 elements) takes index qs[g] | bits 0..2 (even g) or 4..6 (odd g) of
// qh[g / 2] as bits 8..10, delta sign bit 3 / 7; scales as four LE u16 sc[0..3]: 3-bit
// scale of 16 elements t at bits 3 * (t % 4) of sc[t / 4]; the fp16 d is the top nibbles
// sc[0] >> 12 | sc[1] >> 12 << 4 | sc[2] >> 12 << 8 | sc[3] >> 12 << 12.
void dequant_iq1_m(const BlockIQ1M* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    uint16_t sc[4];
    std::memcpy(sc, b[i].scales, 8);
    const uint16_t dbits = static_cast<uint16_t>((sc[0] >> 12) | (sc[1] >> 12) << 4 | (sc[2] >> 12) << 8 |
                                                 (sc[3] >> 12) << 12);
    const float d = h2f(dbits);
    for (int g = 0; g < 32; ++g) {
      const uint8_t qh = b[i].qh[g / 2];
      const int hi = g % 2 == 0 ? qh & 7 : (qh >> 4) & 7;
      const bool neg = g % 2 == 0 ? (qh & 0x08) != 0 : (qh & 0x80) != 0;
      const int t = g / 2;  // 16-element sub-block
      const int s = (sc[t / 4] >> (3 * (t % 4))) & 7;
      const float dl = d * static_cast<float>(2 * s + 1);
      const int idx = b[i].qs[g] | hi << 8;
      for (int j = 0; j < 8; ++j) y[8 * g + j] = dl * (iq1_grid(idx, j) + (neg ? -0.125f : 0.125f));
    }
  }
}

void dequant_iq4_nl(const BlockIQ4NL* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[b[i].qs[j] & 15]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[b[i].qs[j] >> 4]);
    }
  }
}

// IQ4_XS: 6-bit scale of sub-block ib = nibble (ib % 2) of scales_l[ib / 2] | bits
// 2ib..2ib+1 of scales_h as bits 4, 5; x = d * (ls - 32) * kIq4nlValues[nibble].
void dequant_iq4_xs(const BlockIQ4XS* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int ib = 0; ib < 8; ++ib, y += 32) {
      const int ls = ((b[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | ((b[i].scales_h >> (2 * ib)) & 3) << 4;
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* q = b[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[q[j] & 15]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[q[j] >> 4]);
      }
    }
  }
}

}  // namespace

bool dequantize_lowbit_ref(GgmlType type, const void* src, float* dst, int64_t nb) {
  switch (type) {
    case GgmlType::Q2_K: dequant_q2_k(static_cast<const BlockQ2K*>(src), dst, nb); return true;
    case GgmlType::Q3_K: dequant_q3_k(static_cast<const BlockQ3K*>(src), dst, nb); return true;
    case GgmlType::TQ1_0: dequant_tq1_0(static_cast<const BlockTQ1_0*>(src), dst, nb); return true;
    case GgmlType::TQ2_0: dequant_tq2_0(static_cast<const BlockTQ2_0*>(src), dst, nb); return true;
    case GgmlType::IQ2_XXS: dequant_iq2_xxs(static_cast<const BlockIQ2XXS*>(src), dst, nb); return true;
    case GgmlType::IQ2_XS: dequant_iq2_xs(static_cast<const BlockIQ2XS*>(src), dst, nb); return true;
    case GgmlType::IQ2_S: dequant_iq2_s(static_cast<const BlockIQ2S*>(src), dst, nb); return true;
    case GgmlType::IQ3_XXS: dequant_iq3_xxs(static_cast<const BlockIQ3XXS*>(src), dst, nb); return true;
    case GgmlType::IQ3_S: dequant_iq3_s(static_cast<const BlockIQ3S*>(src), dst, nb); return true;
    case GgmlType::IQ1_S: dequant_iq1_s(static_cast<const BlockIQ1S*>(src), dst, nb); return true;
    case GgmlType::IQ1_M: dequant_iq1_m(static_cast<const BlockIQ1M*>(src), dst, nb); return true;
    case GgmlType::IQ4_NL: dequant_iq4_nl(static_cast<const BlockIQ4NL*>(src), dst, nb); return true;
    case GgmlType::IQ4_XS: dequant_iq4_xs(static_cast<const BlockIQ4XS*>(src), dst, nb); return true;
    default: return false;
  }
}

}  // namespace moe::ops::ref
