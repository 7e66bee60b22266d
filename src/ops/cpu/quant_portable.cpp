// Portable kernels (plain C++, no intrinsics) for every weight type: the
// fallback on CPUs without AVX2 and the "scalar" path of MOE_KERNEL. Tiles of
// 4 weight rows x 4 tokens: each weight block is unpacked once to integers and
// reused for the 4 tokens. Per block: acc += (d_w * d_x) * sum_i(q_w[i] * q_x[i]),
// integer inner sums are exact, so results differ from the double reference only
// by f32 rounding of the per-block terms.
#include <algorithm>
#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/cpu/quant_lowbit.h"
#include "ops/reference/iq_grids.h"

namespace moe::ops::cpu {
namespace {

// --- activation partner q8_0: weights unpacked to int8 w[32], x = d * w ----------
struct Q8Unpacked {
  int8_t w[32];
  float d;
};
float dot_q8(const Q8Unpacked& u, const BlockQ8_0& x) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += u.w[j] * x.qs[j];
  return u.d * fp16_to_f32(x.d) * static_cast<float>(s);
}

struct KQ8_0 {
  using W = BlockQ8_0;
  using X = BlockQ8_0;
  using U = Q8Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    std::memcpy(u.w, b.qs, 32);
  }
  static float dot(const U& u, const X& x) { return dot_q8(u, x); }
};
struct KQ4_0 {  // w = q - 8
  using W = BlockQ4_0;
  using X = BlockQ8_0;
  using U = Q8Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      u.w[j] = static_cast<int8_t>((b.qs[j] & 0xF) - 8);
      u.w[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - 8);
    }
  }
  static float dot(const U& u, const X& x) { return dot_q8(u, x); }
};
struct KQ5_0 {  // w = q5 - 16
  using W = BlockQ5_0;
  using X = BlockQ8_0;
  using U = Q8Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      u.w[j] = static_cast<int8_t>(((b.qs[j] & 0xF) | ((qh >> j) & 1) << 4) - 16);
      u.w[j + 16] = static_cast<int8_t>(((b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
    }
  }
  static float dot(const U& u, const X& x) { return dot_q8(u, x); }
};
// 2^(e - 128) as f32 bits, exact also for the subnormal e = 0, 1 (ggml's E8M0_TO_FP32_HALF).
float e8m0_half(uint8_t e) {
  return bits_to_f32(e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23);
}
struct KMxfp4 {  // w = 2 * E2M1 value (integer), d = 2^(e - 128)
  using W = BlockMxfp4;
  using X = BlockQ8_0;
  using U = Q8Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = e8m0_half(b.e);
    for (int j = 0; j < 16; ++j) {
      u.w[j] = kE2M1x2[b.qs[j] & 0xF];
      u.w[j + 16] = kE2M1x2[b.qs[j] >> 4];
    }
  }
  static float dot(const U& u, const X& x) { return dot_q8(u, x); }
};

struct KIq4nl {  // w = kIq4nlValues[nibble]
  using W = BlockIQ4NL;
  using X = BlockQ8_0;
  using U = Q8Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      u.w[j] = kIq4nlValues[b.qs[j] & 0xF];
      u.w[j + 16] = kIq4nlValues[b.qs[j] >> 4];
    }
  }
  static float dot(const U& u, const X& x) { return dot_q8(u, x); }
};

// --- activation partner q8_1: x = d*q + m, dot = d*dx*sum(q*qx) + m*sx ------------
struct Q8_1Unpacked {
  uint8_t q[32];
  float d, m;
};
template <int kBits, class Block>
struct KQx_1 {
  using W = Block;
  using X = BlockQ8_1;
  using U = Q8_1Unpacked;
  static constexpr int kBlock = 32;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    u.m = fp16_to_f32(b.m);
    uint32_t qh = 0;
    if constexpr (kBits == 5) std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      u.q[j] = static_cast<uint8_t>((b.qs[j] & 0xF) | ((qh >> j) & 1) << 4);
      u.q[j + 16] = static_cast<uint8_t>((b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
  }
  static float dot(const U& u, const X& x) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += u.q[j] * x.qs[j];
    return u.d * fp16_to_f32(x.d) * static_cast<float>(s) + u.m * fp16_to_f32(x.s);
  }
};

// --- activation partner q8_K ------------------------------------------------------
// Q4_K/Q5_K: x = d*sc*q - dmin*m; the min term uses the activation's bsums:
// dot = dx * (d * sum_s sc_s sum(q*qx) - dmin * sum_s m_s (bsums[2s] + bsums[2s+1])).
struct QKUnpacked {
  uint8_t q[256];
  int sc[8], mn[8];
  float d, dmin;
};
template <int kBits, class Block>
struct KQx_K {
  using W = Block;
  using X = BlockQ8K;
  using U = QKUnpacked;
  static constexpr int kBlock = 256;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    u.dmin = fp16_to_f32(b.dmin);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      k_scale_min(s, b.scales, sc, m);
      u.sc[s] = sc;
      u.mn[s] = m;
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        int lo = b.qs[32 * c + l] & 0xF, hi = b.qs[32 * c + l] >> 4;
        if constexpr (kBits == 5) {
          lo |= ((b.qh[l] >> (2 * c)) & 1) << 4;
          hi |= ((b.qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        u.q[64 * c + l] = static_cast<uint8_t>(lo);
        u.q[64 * c + 32 + l] = static_cast<uint8_t>(hi);
      }
  }
  static float dot(const U& u, const X& x) {
    int sumi = 0, summ = 0;
    for (int s = 0; s < 8; ++s) {
      int t = 0;
      for (int l = 0; l < 32; ++l) t += u.q[32 * s + l] * x.qs[32 * s + l];
      sumi += u.sc[s] * t;
      summ += u.mn[s] * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
    }
    float dx;
    std::memcpy(&dx, &x.d, 4);
    return dx * u.d * static_cast<float>(sumi) - dx * u.dmin * static_cast<float>(summ);
  }
};
// Q6_K: x = d * sc * (q6 - 32), 16 sub-blocks of 16 elements.
struct Q6KUnpacked {
  int8_t q[256];
  int sc[16];
  float d;
};
struct KQ6_K {
  using W = BlockQ6K;
  using X = BlockQ8K;
  using U = Q6KUnpacked;
  static constexpr int kBlock = 256;
  static void unpack(const W& b, U& u) {
    u.d = fp16_to_f32(b.d);
    for (int k = 0; k < 16; ++k) u.sc[k] = b.scales[k];
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = b.ql + 64 * n;
      const uint8_t* qh = b.qh + 32 * n;
      int8_t* y = u.q + 128 * n;
      for (int l = 0; l < 32; ++l) {
        y[l] = static_cast<int8_t>(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
        y[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
        y[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
        y[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
      }
    }
  }
  static float dot(const U& u, const X& x) {
    int sumi = 0;
    for (int k = 0; k < 16; ++k) {
      int t = 0;
      for (int l = 0; l < 16; ++l) t += u.q[16 * k + l] * x.qs[16 * k + l];
      sumi += u.sc[k] * t;
    }
    float dx;
    std::memcpy(&dx, &x.d, 4);
    return dx * u.d * static_cast<float>(sumi);
  }
};

// 256-element low-bit blocks in the integer form of quant_lowbit.h:
// dot = dx * (d * sum_k sc_k sum(w*qx) - dmin * sum_k mn_k bsums[k]);
// |sum| <= 16 sub-blocks * 32 * 16 * 127 * 127 < 2^31.
template <class Block, LowbitUnpackFn F>
struct KLowbit {
  using W = Block;
  using X = BlockQ8K;
  using U = LowbitBlock;
  static constexpr int kBlock = 256;
  static void unpack(const W& b, U& u) { F(&b, u); }
  static float dot(const U& u, const X& x) {
    int sumi = 0, summ = 0;
    for (int k = 0; k < 16; ++k) {
      int t = 0;
      for (int l = 0; l < 16; ++l) t += u.w[16 * k + l] * x.qs[16 * k + l];
      sumi += u.sc[k] * t;
      summ += u.mn[k] * x.bsums[k];
    }
    float dx;
    std::memcpy(&dx, &x.d, 4);
    return dx * u.d * static_cast<float>(sumi) - dx * u.dmin * static_cast<float>(summ);
  }
};

// --- float weights: products summed in f32 -----------------------------------------
struct FF32 {
  using E = float;
  static float get(const E* p, int64_t i) { return p[i]; }
};
struct FF16 {
  using E = uint16_t;
  static float get(const E* p, int64_t i) { return fp16_to_f32(p[i]); }
};
struct FBF16 {
  using E = uint16_t;
  static float get(const E* p, int64_t i) { return bf16_to_f32(p[i]); }
};

constexpr int kTileR = 4;  // weight rows per tile
constexpr int kTileT = 4;  // tokens per tile

template <class K>
void gemm_blocks(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m,
                 float* Y, int64_t ldy, int64_t nr, int64_t n) {
  const int64_t nb = n / K::kBlock;
  const auto* wbase = static_cast<const uint8_t*>(W);
  const auto* xbase = static_cast<const uint8_t*>(X);
  typename K::U u[kTileR];
  for (int64_t r = 0; r < nr; r += kTileR) {
    const int R = static_cast<int>(std::min<int64_t>(kTileR, nr - r));
    for (int64_t t = 0; t < m; t += kTileT) {
      const int T = static_cast<int>(std::min<int64_t>(kTileT, m - t));
      float acc[kTileR][kTileT] = {};
      for (int64_t b = 0; b < nb; ++b) {
        for (int i = 0; i < R; ++i)
          K::unpack(reinterpret_cast<const typename K::W*>(wbase + (r + i) * row_stride)[b], u[i]);
        for (int j = 0; j < T; ++j) {
          const auto& xb = reinterpret_cast<const typename K::X*>(xbase + (t + j) * x_stride)[b];
          for (int i = 0; i < R; ++i) acc[i][j] += K::dot(u[i], xb);
        }
      }
      for (int j = 0; j < T; ++j)
        for (int i = 0; i < R; ++i) Y[(t + j) * ldy + r + i] = acc[i][j];
    }
  }
}

template <class F>
void gemm_float(const void* W, size_t row_stride, const void* X, size_t x_stride, int64_t m,
                float* Y, int64_t ldy, int64_t nr, int64_t n) {
  using E = typename F::E;
  const auto* wbase = static_cast<const uint8_t*>(W);
  const auto* xbase = static_cast<const uint8_t*>(X);
  for (int64_t r = 0; r < nr; ++r) {
    const E* w = reinterpret_cast<const E*>(wbase + r * row_stride);
    for (int64_t t = 0; t < m; ++t) {
      const E* x = reinterpret_cast<const E*>(xbase + t * x_stride);
      float s = 0.f;
      for (int64_t i = 0; i < n; ++i) s += F::get(w, i) * F::get(x, i);
      Y[t * ldy + r] = s;
    }
  }
}

}  // namespace

GemmFn gemm_portable(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return gemm_float<FF32>;
    case GgmlType::F16: return gemm_float<FF16>;
    case GgmlType::BF16: return gemm_float<FBF16>;
    case GgmlType::Q8_0: return gemm_blocks<KQ8_0>;
    case GgmlType::Q4_0: return gemm_blocks<KQ4_0>;
    case GgmlType::Q5_0: return gemm_blocks<KQ5_0>;
    case GgmlType::MXFP4: return gemm_blocks<KMxfp4>;
    case GgmlType::Q4_1: return gemm_blocks<KQx_1<4, BlockQ4_1>>;
    case GgmlType::Q5_1: return gemm_blocks<KQx_1<5, BlockQ5_1>>;
    case GgmlType::Q4_K: return gemm_blocks<KQx_K<4, BlockQ4K>>;
    case GgmlType::Q5_K: return gemm_blocks<KQx_K<5, BlockQ5K>>;
    case GgmlType::Q6_K: return gemm_blocks<KQ6_K>;
    case GgmlType::IQ4_NL: return gemm_blocks<KIq4nl>;
    case GgmlType::Q2_K: return gemm_blocks<KLowbit<BlockQ2K, unpack_q2_k>>;
    case GgmlType::Q3_K: return gemm_blocks<KLowbit<BlockQ3K, unpack_q3_k>>;
    case GgmlType::TQ1_0: return gemm_blocks<KLowbit<BlockTQ1_0, unpack_tq1_0>>;
    case GgmlType::TQ2_0: return gemm_blocks<KLowbit<BlockTQ2_0, unpack_tq2_0>>;
    case GgmlType::IQ1_S: return gemm_blocks<KLowbit<BlockIQ1S, unpack_iq1_s>>;
    case GgmlType::IQ1_M: return gemm_blocks<KLowbit<BlockIQ1M, unpack_iq1_m>>;
    case GgmlType::IQ2_XXS: return gemm_blocks<KLowbit<BlockIQ2XXS, unpack_iq2_xxs>>;
    case GgmlType::IQ2_XS: return gemm_blocks<KLowbit<BlockIQ2XS, unpack_iq2_xs>>;
    case GgmlType::IQ2_S: return gemm_blocks<KLowbit<BlockIQ2S, unpack_iq2_s>>;
    case GgmlType::IQ3_XXS: return gemm_blocks<KLowbit<BlockIQ3XXS, unpack_iq3_xxs>>;
    case GgmlType::IQ3_S: return gemm_blocks<KLowbit<BlockIQ3S, unpack_iq3_s>>;
    case GgmlType::IQ4_XS: return gemm_blocks<KLowbit<BlockIQ4XS, unpack_iq4_xs>>;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu
