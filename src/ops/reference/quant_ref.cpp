// Scalar references for every weight type: each decoder follows the block
// formula of ops/cpu/quant_blocks.h literally, one element at a time. Tests use
// them as the oracle for the SIMD kernels; nothing here is meant to be fast.
// Invariants: n is a multiple of the type's block size; outputs never hold NaN
// for finite inputs; activation rounding is round-half-to-even (std::nearbyint).
#include "ops/reference/quant_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/quant.h"
#include "ops/reference/quant_lowbit_ref.h"

namespace moe::ops::ref {
namespace {

float h2f(uint16_t h) { return fp16_to_f32(h); }
// 2^(e - 127), the E8M0 scale of MXFP4 (e = 255 is NaN in the format; not produced).
float e8m0(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 127); }
int rne(float x) { return static_cast<int>(std::nearbyint(x)); }

void check_blocks(GgmlType t, int64_t n) {
  const int64_t bs = traits(t).block_size;
  MOE_CHECK(n % bs == 0, "{}: row length {} is not a multiple of the block size {}", type_name(t),
            n, bs);
}

// ---- decoders ---------------------------------------------------------------

void dequant_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d), m = h2f(b[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(b[i].qs[j] & 0xF) + m;
      y[j + 16] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
    }
  }
}

uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void dequant_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int q0 = (b[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
      y[j] = d * static_cast<float>(q0 - 16);
      y[j + 16] = d * static_cast<float>(q1 - 16);
    }
  }
}

void dequant_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d), m = h2f(b[i].m);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int q0 = (b[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4;
      y[j] = d * static_cast<float>(q0) + m;
      y[j + 16] = d * static_cast<float>(q1) + m;
    }
  }
}

void dequant_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void dequant_q8_1(const BlockQ8_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void dequant_mxfp4(const BlockMxfp4* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const float s = e8m0(b[i].e);
    for (int j = 0; j < 16; ++j) {
      y[j] = kE2M1[b[i].qs[j] & 0xF] * s;
      y[j + 16] = kE2M1[b[i].qs[j] >> 4] * s;
    }
  }
}

void dequant_q4_k(const BlockQ4K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {  // chunk c: sub-blocks 2c (low), 2c+1 (high)
      uint8_t sc, m;
      k_scale_min(2 * c, b[i].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * c + 1, b[i].scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_k(const BlockQ5K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      k_scale_min(2 * c, b[i].scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * c + 1, b[i].scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const int q5 = (q[l] & 0xF) | ((b[i].qh[l] >> (2 * c)) & 1) << 4;
        *y++ = d1 * static_cast<float>(q5) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q5 = (q[l] >> 4) | ((b[i].qh[l] >> (2 * c + 1)) & 1) << 4;
        *y++ = d2 * static_cast<float>(q5) - m2;
      }
    }
  }
}

void dequant_q6_k(const BlockQ6K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int n = 0; n < 2; ++n, y += 128) {  // half n: ql += 64n, qh += 32n, sc += 8n
      const uint8_t* ql = b[i].ql + 64 * n;
      const uint8_t* qh = b[i].qh + 32 * n;
      const int8_t* sc = b[i].scales + 8 * n;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = d * sc[is + 0] * static_cast<float>(q1);
        y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
        y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
        y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
      }
    }
  }
}

void dequant_q8_k(const BlockQ8K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 256) {
    float d;
    std::memcpy(&d, &b[i].d, 4);
    for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
  }
}

// ---- weight quantizers --------------------------------------------------------

// Signed value of largest magnitude (first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.f, mx = 0.f;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      mx = x[j];
    }
  return mx;
}

void quant_q8_0_w(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    const float amax = std::fabs(signed_absmax(x, 32));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;  // q = round(x / d)
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void quant_q4_0_w(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    const float d = signed_absmax(x, 32) / -8.f, id = d != 0.f ? 1.f / d : 0.f;  // max -> q = 0
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

void quant_q5_0_w(const float* x, BlockQ5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    const float d = signed_absmax(x, 32) / -16.f, id = d != 0.f ? 1.f / d : 0.f;
    b[i].d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int q1 = std::min(31, static_cast<int>(x[j + 16] * id + 16.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
      qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) b[i].qh[k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

// Q4_1 / Q5_1: x = d*q + m with m = min, d = (max - min) / (2^bits - 1).
template <int kBits, class Block>
void quant_qx_1_w(const float* x, Block* b, int64_t nb) {
  constexpr int kMax = (1 << kBits) - 1;
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    const float mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
    const float d = (mx - mn) / kMax, id = d != 0.f ? 1.f / d : 0.f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(kMax, static_cast<int>((x[j] - mn) * id + 0.5f));
      const int q1 = std::min(kMax, static_cast<int>((x[j + 16] - mn) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
      qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    if constexpr (kBits == 5)
      for (int k = 0; k < 4; ++k) b[i].qh[k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

void quant_mxfp4_w(const float* x, BlockMxfp4* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    const float amax = std::fabs(signed_absmax(x, 32));
    // largest element maps into [4, 8) * 2^(e-127); values above 6 clip to 6
    const int e = amax > 0.f ? std::clamp(static_cast<int>(std::floor(std::log2(amax))) - 2 + 127, 1, 254)
                             : 0;
    b[i].e = static_cast<uint8_t>(e);
    const float s = e8m0(static_cast<uint8_t>(e));
    auto nearest = [&](float v) {
      int best = 0;
      for (int k = 1; k < 16; ++k)
        if (std::fabs(kE2M1[k] * s - v) < std::fabs(kE2M1[best] * s - v)) best = k;
      return best;
    };
    for (int j = 0; j < 16; ++j)
      b[i].qs[j] = static_cast<uint8_t>(nearest(x[j]) | nearest(x[j + 16]) << 4);
  }
}

// Q4_K / Q5_K: per sub-block of 32 a scale (max - min) / (2^bits - 1) and a min
// -min(0, min x); both quantized to 6 bits against d = max scale / 63 and
// dmin = max min / 63; then q = rne((x + dmin*m) / (d*sc)).
template <int kBits, class Block>
void quant_qx_k_w(const float* x, Block* b, int64_t nb) {
  constexpr int kMax = (1 << kBits) - 1;
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float scale[8], mins[8];
    for (int s = 0; s < 8; ++s) {
      const float mn = std::min(0.f, *std::min_element(x + 32 * s, x + 32 * s + 32));
      const float mx = *std::max_element(x + 32 * s, x + 32 * s + 32);
      scale[s] = std::max(0.f, mx - mn) / kMax;
      mins[s] = -mn;
    }
    b[i].d = f32_to_fp16(*std::max_element(scale, scale + 8) / 63.f);
    b[i].dmin = f32_to_fp16(*std::max_element(mins, mins + 8) / 63.f);
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = static_cast<uint8_t>(d > 0.f ? std::clamp(rne(scale[s] / d), 0, 63) : 0);
      m[s] = static_cast<uint8_t>(dmin > 0.f ? std::clamp(rne(mins[s] / dmin), 0, 63) : 0);
    }
    for (int j = 0; j < 4; ++j) {  // inverse of k_scale_min
      b[i].scales[j] = static_cast<uint8_t>((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
      b[i].scales[j + 4] = static_cast<uint8_t>((m[j] & 63) | (m[j + 4] >> 4) << 6);
      b[i].scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
    }
    std::memset(b[i].qs, 0, sizeof(b[i].qs));
    if constexpr (kBits == 5) std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int s = 0; s < 8; ++s) {
      const float es = d * sc[s], em = dmin * m[s];
      const int c = s / 2, hi = s % 2;
      for (int l = 0; l < 32; ++l) {
        const int q = es > 0.f ? std::clamp(rne((x[32 * s + l] + em) / es), 0, kMax) : 0;
        b[i].qs[32 * c + l] |= static_cast<uint8_t>((q & 0xF) << (4 * hi));
        if constexpr (kBits == 5) b[i].qh[l] |= static_cast<uint8_t>((q >> 4) << s);
      }
    }
  }
}

// Q6_K: per 16 elements scale = amax / 31, quantized to int8 against d = max / 127.
void quant_q6_k_w(const float* x, BlockQ6K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float scale[16];
    for (int k = 0; k < 16; ++k) scale[k] = std::fabs(signed_absmax(x + 16 * k, 16)) / 31.f;
    b[i].d = f32_to_fp16(*std::max_element(scale, scale + 16) / 127.f);
    const float d = h2f(b[i].d);
    std::memset(b[i].ql, 0, sizeof(b[i].ql));
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int k = 0; k < 16; ++k)
      b[i].scales[k] = static_cast<int8_t>(d > 0.f ? std::clamp(rne(scale[k] / d), 0, 127) : 0);
    for (int e = 0; e < 256; ++e) {
      const float es = d * b[i].scales[e / 16];
      const int q = (es > 0.f ? std::clamp(rne(x[e] / es), -32, 31) : 0) + 32;
      // element e = 128n + 32g + l: ql[64n + l + 32(g&1)] nibble g/2, qh[32n + l] bits 2g..2g+1
      const int n = e / 128, g = (e % 128) / 32, l = e % 32;
      b[i].ql[64 * n + l + 32 * (g & 1)] |= static_cast<uint8_t>((q & 0xF) << (4 * (g / 2)));
      b[i].qh[32 * n + l] |= static_cast<uint8_t>((q >> 4) << (2 * g));
    }
  }
}

}  // namespace

void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n) {
  check_blocks(type, n);
  const int64_t nb = n / traits(type).block_size;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = h2f(static_cast<const uint16_t*>(src)[i]);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      return;
    case GgmlType::Q4_0: return dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case GgmlType::Q4_1: return dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case GgmlType::Q5_0: return dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case GgmlType::Q5_1: return dequant_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb);
    case GgmlType::Q8_0: return dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case GgmlType::Q8_1: return dequant_q8_1(static_cast<const BlockQ8_1*>(src), dst, nb);
    case GgmlType::MXFP4: return dequant_mxfp4(static_cast<const BlockMxfp4*>(src), dst, nb);
    case GgmlType::Q4_K: return dequant_q4_k(static_cast<const BlockQ4K*>(src), dst, nb);
    case GgmlType::Q5_K: return dequant_q5_k(static_cast<const BlockQ5K*>(src), dst, nb);
    case GgmlType::Q6_K: return dequant_q6_k(static_cast<const BlockQ6K*>(src), dst, nb);
    case GgmlType::Q8_K: return dequant_q8_k(static_cast<const BlockQ8K*>(src), dst, nb);
    default:
      if (dequantize_lowbit_ref(type, src, dst, nb)) return;
      throw_error("dequantize: type {} is not supported", type_name(type));
  }
}

void quantize_row_ref(GgmlType type, const float* src, void* dst, int64_t n) {
  check_blocks(type, n);
  const int64_t nb = n / traits(type).block_size;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = f32_to_fp16(src[i]);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = f32_to_bf16(src[i]);
      return;
    case GgmlType::Q4_0: return quant_q4_0_w(src, static_cast<BlockQ4_0*>(dst), nb);
    case GgmlType::Q4_1: return quant_qx_1_w<4>(src, static_cast<BlockQ4_1*>(dst), nb);
    case GgmlType::Q5_0: return quant_q5_0_w(src, static_cast<BlockQ5_0*>(dst), nb);
    case GgmlType::Q5_1: return quant_qx_1_w<5>(src, static_cast<BlockQ5_1*>(dst), nb);
    case GgmlType::Q8_0: return quant_q8_0_w(src, static_cast<BlockQ8_0*>(dst), nb);
    case GgmlType::Q8_1: return quantize_row_q8_1_ref(src, dst, n);
    case GgmlType::Q8_K: return quantize_row_q8_K_ref(src, dst, n);
    case GgmlType::MXFP4: return quant_mxfp4_w(src, static_cast<BlockMxfp4*>(dst), nb);
    case GgmlType::Q4_K: return quant_qx_k_w<4>(src, static_cast<BlockQ4K*>(dst), nb);
    case GgmlType::Q5_K: return quant_qx_k_w<5>(src, static_cast<BlockQ5K*>(dst), nb);
    case GgmlType::Q6_K: return quant_q6_k_w(src, static_cast<BlockQ6K*>(dst), nb);
    default: throw_error("quantize: type {} is not supported", type_name(type));
  }
}

// q8_0: amax = max|x|, d = fp16(amax/127), q = rne(x * (127/amax)); amax == 0 -> all 0.
void quantize_row_q8_0_ref(const float* x, void* dst, int64_t n) {
  check_blocks(GgmlType::Q8_0, n);
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    b[i].d = f32_to_fp16(amax / 127.f);
    for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(rne(x[j] * id));
  }
}

// q8_1: as q8_0, plus s = fp16(d * sum(q)) with the unrounded f32 d.
void quantize_row_q8_1_ref(const float* x, void* dst, int64_t n) {
  check_blocks(GgmlType::Q8_1, n);
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
    b[i].d = f32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      b[i].qs[j] = static_cast<int8_t>(rne(x[j] * id));
      sum += b[i].qs[j];
    }
    b[i].s = f32_to_fp16(d * static_cast<float>(sum));
  }
}

// q8_K: m = signed largest-magnitude value, iscale = -127/m, q = min(127, rne(x*iscale)),
// d = 1/iscale, bsums[k] = sum of q[16k .. 16k+15].
void quantize_row_q8_K_ref(const float* x, void* dst, int64_t n) {
  check_blocks(GgmlType::Q8_K, n);
  auto* b = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < n / 256; ++i, x += 256) {
    BlockQ8K blk{};
    const float m = signed_absmax(x, 256);
    if (m != 0.f) {
      const float iscale = -127.f / m;
      for (int j = 0; j < 256; ++j) blk.qs[j] = static_cast<int8_t>(std::min(127, rne(x[j] * iscale)));
      for (int k = 0; k < 16; ++k) {
        int s = 0;
        for (int j = 0; j < 16; ++j) s += blk.qs[16 * k + j];
        blk.bsums[k] = static_cast<int16_t>(s);
      }
      blk.d = 1.f / iscale;
    }
    std::memcpy(&b[i], &blk, sizeof(blk));
  }
}

void quantize_activation_row_ref(GgmlType weight_type, const float* x, void* dst, int64_t n) {
  const GgmlType t = vec_dot_type(weight_type);
  switch (t) {
    case GgmlType::Q8_0: return quantize_row_q8_0_ref(x, dst, n);
    case GgmlType::Q8_1: return quantize_row_q8_1_ref(x, dst, n);
    case GgmlType::Q8_K: return quantize_row_q8_K_ref(x, dst, n);
    default: return quantize_row_ref(t, x, dst, n);  // f32 copy, f16 / bf16 rounding
  }
}

// Q4_1/Q5_1 . q8_1: llama.cpp's dot takes the block sum of the activations from the
// stored s (fp16 of d*sum(q)), not from d*q, so the reference does too:
//   sum_b [ sum_i d_w q_i * d_x qx_i + m_b * s_b ].
double vec_dot_q8_1_ref(GgmlType weight_type, const void* w_row, const void* x_q, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n));
  dequantize_row_ref(weight_type, w_row, w.data(), n);
  dequantize_row_ref(GgmlType::Q8_1, x_q, x.data(), n);
  const auto* xb = static_cast<const BlockQ8_1*>(x_q);
  const auto* wb = static_cast<const uint8_t*>(w_row);
  const size_t wsize = traits(weight_type).type_size;
  double s = 0.0;
  for (int64_t b = 0; b < n / 32; ++b) {
    uint16_t mh;  // m follows d in both BlockQ4_1 and BlockQ5_1
    std::memcpy(&mh, wb + static_cast<size_t>(b) * wsize + 2, 2);
    const double m = h2f(mh);
    for (int64_t i = 32 * b; i < 32 * b + 32; ++i)
      s += (static_cast<double>(w[i]) - m) * static_cast<double>(x[i]);  // d_w q_i * x_i
    s += m * h2f(xb[b].s);
  }
  return s;
}

double vec_dot_ref(GgmlType weight_type, const void* w_row, const void* x_q, int64_t n) {
  if (vec_dot_type(weight_type) == GgmlType::Q8_1) return vec_dot_q8_1_ref(weight_type, w_row, x_q, n);
  std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n));
  dequantize_row_ref(weight_type, w_row, w.data(), n);
  dequantize_row_ref(vec_dot_type(weight_type), x_q, x.data(), n);
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(w[i]) * static_cast<double>(x[i]);
  return s;
}

}  // namespace moe::ops::ref
