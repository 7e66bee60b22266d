// Portable kernels (plain C++) on the packed layouts of ops/pack.h
// (record layout in pack_kernels.h): what gemm_packed runs when the active kernel
// path is not avx512, so that a model packed at load time runs on any CPU. Per
// (tile, block) the 16 rows are decoded once to integers and reused for every
// token; integer block sums are exact and each block adds
// (d_w * d_x) * sum_i(q_w[i] * q_x[i]) in f32, as the unpacked portable kernels do.
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "ops/cpu/pack_kernels.h"
#include "ops/cpu/quant_blocks.h"

namespace moe::ops::cpu {
namespace {

float load_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

// Row r of a nibble group -> 32 values 0..15 in element order.
void get_nibbles(const uint8_t* g, int r, uint8_t* q) {
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 4; ++i) {
      const uint8_t v = g[64 * j + 4 * r + i];
      q[8 * j + i] = v & 0xF;
      q[8 * j + 4 + i] = v >> 4;
    }
}

// Q4_0 / Q8_0 (activations q8_0): the record decodes to 16 rows of 32 int8 weights.
template <GgmlType kType>
void gemm_q8_0_partner(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X, size_t x_stride,
                       int64_t m, float* Y, int64_t ldy) {
  const size_t rec = packed_record_bytes(kType);
  std::vector<float> acc(static_cast<size_t>(m) * kTileRows);
  int8_t w[kTileRows][32];
  float dw[kTileRows];
  for (int64_t k = 0; k < tiles; ++k) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = Wp + (k * nb + b) * rec;
      for (int r = 0; r < kTileRows; ++r) {
        dw[r] = load_fp16(p + 2 * r);
        if constexpr (kType == GgmlType::Q4_0) {
          uint8_t q[32];
          get_nibbles(p + 32, r, q);
          for (int l = 0; l < 32; ++l) w[r][l] = static_cast<int8_t>(q[l] - 8);
        } else {
          for (int j = 0; j < 8; ++j)
            for (int i = 0; i < 4; ++i) w[r][4 * j + i] = static_cast<int8_t>(p[32 + 64 * j + 4 * r + i] ^ 0x80);
        }
      }
      for (int64_t t = 0; t < m; ++t) {
        const auto& x = reinterpret_cast<const BlockQ8_0*>(X + t * x_stride)[b];
        const float dx = fp16_to_f32(x.d);
        for (int r = 0; r < kTileRows; ++r) {
          int s = 0;
          for (int l = 0; l < 32; ++l) s += w[r][l] * x.qs[l];
          acc[t * kTileRows + r] += dw[r] * dx * static_cast<float>(s);
        }
      }
    }
    for (int64_t t = 0; t < m; ++t)
      std::memcpy(Y + t * ldy + k * kTileRows, &acc[t * kTileRows], kTileRows * sizeof(float));
  }
}

// Q4_K (activations q8_K): x = d * sc_s * q - dmin * m_s per sub-block s of 32;
// dot = d * d_x * sum_s sc_s * sum(q * x_q) - dmin * d_x * sum_s m_s * sum_s(x_q),
// the sums of x_q over a sub-block being bsums[2s] + bsums[2s + 1].
void gemm_q4_k(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X, size_t x_stride, int64_t m,
               float* Y, int64_t ldy) {
  std::vector<float> acc(static_cast<size_t>(m) * kTileRows);
  uint8_t q[kTileRows][256];
  uint8_t sc[kTileRows][8], mn[kTileRows][8];
  float d[kTileRows], dmin[kTileRows];
  for (int64_t k = 0; k < tiles; ++k) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = Wp + (k * nb + b) * kRecQ4K;
      for (int r = 0; r < kTileRows; ++r) {
        d[r] = load_fp16(p + 2 * r);
        dmin[r] = load_fp16(p + 32 + 2 * r);
        uint8_t scales[12];
        for (int pl = 0; pl < 3; ++pl) std::memcpy(scales + 4 * pl, p + kQ4KScalesOff + 64 * pl + 4 * r, 4);
        for (int s = 0; s < 8; ++s) {
          k_scale_min(s, scales, sc[r][s], mn[r][s]);
          get_nibbles(p + kQ4KQsOff + kNibbleGroupBytes * s, r, q[r] + 32 * s);
        }
      }
      for (int64_t t = 0; t < m; ++t) {
        const auto& x = reinterpret_cast<const BlockQ8K*>(X + t * x_stride)[b];
        float dx;
        std::memcpy(&dx, &x.d, 4);
        for (int r = 0; r < kTileRows; ++r) {
          int32_t sum = 0, mins = 0;
          for (int s = 0; s < 8; ++s) {
            int32_t ss = 0;
            for (int l = 0; l < 32; ++l) ss += q[r][32 * s + l] * x.qs[32 * s + l];
            sum += sc[r][s] * ss;
            mins += mn[r][s] * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
          }
          acc[t * kTileRows + r] += d[r] * dx * static_cast<float>(sum) - dmin[r] * dx * static_cast<float>(mins);
        }
      }
    }
    for (int64_t t = 0; t < m; ++t)
      std::memcpy(Y + t * ldy + k * kTileRows, &acc[t * kTileRows], kTileRows * sizeof(float));
  }
}

// Q5_K (activations q8_K): as Q4_K with the 5-bit q5 (5-vector groups, pack_kernels.h).
void gemm_q5_k(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X, size_t x_stride, int64_t m,
               float* Y, int64_t ldy) {
  std::vector<float> acc(static_cast<size_t>(m) * kTileRows);
  uint8_t q[kTileRows][256];
  uint8_t sc[kTileRows][8], mn[kTileRows][8];
  float d[kTileRows], dmin[kTileRows];
  for (int64_t k = 0; k < tiles; ++k) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = Wp + (k * nb + b) * kRecQ5K;
      for (int r = 0; r < kTileRows; ++r) {
        d[r] = load_fp16(p + 2 * r);
        dmin[r] = load_fp16(p + 32 + 2 * r);
        uint8_t scales[12];
        for (int pl = 0; pl < 3; ++pl) std::memcpy(scales + 4 * pl, p + kQ4KScalesOff + 64 * pl + 4 * r, 4);
        for (int s = 0; s < 8; ++s) {
          k_scale_min(s, scales, sc[r][s], mn[r][s]);
          const uint8_t* g = p + kQ4KQsOff + kQ5KGroupBytes * s + 4 * r;
          for (int i = 0; i < 4; ++i) {
            int x = 0;
            for (int c = 0; c < 5; ++c) {
              q[r][32 * s + 4 * c + i] = g[64 * c + i] & 0x1F;
              x |= (g[64 * c + i] >> 5) << (3 * c);
            }
            for (int k = 0; k < 3; ++k) q[r][32 * s + 20 + 4 * k + i] = static_cast<uint8_t>((x >> (5 * k)) & 0x1F);
          }
        }
      }
      for (int64_t t = 0; t < m; ++t) {
        const auto& x = reinterpret_cast<const BlockQ8K*>(X + t * x_stride)[b];
        float dx;
        std::memcpy(&dx, &x.d, 4);
        for (int r = 0; r < kTileRows; ++r) {
          int32_t sum = 0, mins = 0;
          for (int s = 0; s < 8; ++s) {
            int32_t ss = 0;
            for (int l = 0; l < 32; ++l) ss += q[r][32 * s + l] * x.qs[32 * s + l];
            sum += sc[r][s] * ss;
            mins += mn[r][s] * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
          }
          acc[t * kTileRows + r] += d[r] * dx * static_cast<float>(sum) - dmin[r] * dx * static_cast<float>(mins);
        }
      }
    }
    for (int64_t t = 0; t < m; ++t)
      std::memcpy(Y + t * ldy + k * kTileRows, &acc[t * kTileRows], kTileRows * sizeof(float));
  }
}

// Q6_K (activations q8_K): x = d * sc_u * (q6 - 32) per sub-block u of 16;
// dot = d * d_x * sum_u sc_u * sum((q6 - 32) * x_q), exact in int32
// (|sum| <= 16 * 127 * 16 * 32 * 128 < 2^31).
void gemm_q6_k(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X, size_t x_stride, int64_t m,
               float* Y, int64_t ldy) {
  std::vector<float> acc(static_cast<size_t>(m) * kTileRows);
  int8_t q[kTileRows][256];
  int8_t sc[kTileRows][16];
  float d[kTileRows];
  for (int64_t k = 0; k < tiles; ++k) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = Wp + (k * nb + b) * kRecQ6K;
      for (int r = 0; r < kTileRows; ++r) {
        d[r] = load_fp16(p + 2 * r);
        for (int u = 0; u < 16; ++u) sc[r][u] = static_cast<int8_t>(p[kQ6KScalesOff + 16 * u + r]);
        for (int u = 0; u < 16; ++u) {
          const uint8_t* g = p + kQ6KQsOff + kQ6KGroupBytes * u + 4 * r;
          for (int i = 0; i < 4; ++i) {
            int last = 0;
            for (int c = 0; c < 3; ++c) {
              q[r][16 * u + 4 * c + i] = static_cast<int8_t>((g[64 * c + i] & 0x3F) - 32);
              last |= (g[64 * c + i] >> 6) << (2 * c);
            }
            q[r][16 * u + 12 + i] = static_cast<int8_t>(last - 32);
          }
        }
      }
      for (int64_t t = 0; t < m; ++t) {
        const auto& x = reinterpret_cast<const BlockQ8K*>(X + t * x_stride)[b];
        float dx;
        std::memcpy(&dx, &x.d, 4);
        for (int r = 0; r < kTileRows; ++r) {
          int32_t sum = 0;
          for (int u = 0; u < 16; ++u) {
            int32_t ss = 0;
            for (int l = 0; l < 16; ++l) ss += q[r][16 * u + l] * x.qs[16 * u + l];
            sum += sc[r][u] * ss;
          }
          acc[t * kTileRows + r] += d[r] * dx * static_cast<float>(sum);
        }
      }
    }
    for (int64_t t = 0; t < m; ++t)
      std::memcpy(Y + t * ldy + k * kTileRows, &acc[t * kTileRows], kTileRows * sizeof(float));
  }
}

}  // namespace

PackedGemmFn gemm_packed_portable(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return gemm_q8_0_partner<GgmlType::Q4_0>;
    case GgmlType::Q8_0: return gemm_q8_0_partner<GgmlType::Q8_0>;
    case GgmlType::Q4_K: return gemm_q4_k;
    case GgmlType::Q5_K: return gemm_q5_k;
    case GgmlType::Q6_K: return gemm_q6_k;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu
