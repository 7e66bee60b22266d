// Unpackers of the 256-element low-bit blocks into the integer form of quant_lowbit.h
// (int8 weights, int16 scales per 16 elements, float d). Plain C++ compiled without
// target attributes, so the portable kernels and every SIMD path may call them.
// The element order of each layout is written out in ops/reference/quant_lowbit_ref.cpp.
#include <cstring>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/cpu/quant_lowbit.h"
#include "ops/reference/iq_grids.h"

namespace moe::ops::cpu {
namespace {

void clear_mins(LowbitBlock& u) {
  std::memset(u.mn, 0, sizeof(u.mn));
  u.dmin = 0.f;
}
void set_sc32(LowbitBlock& u, int ib, int v) {  // one scale for elements 32ib .. 32ib+31
  u.sc[2 * ib] = u.sc[2 * ib + 1] = static_cast<int16_t>(v);
}
// 8 signed grid values: magnitudes from a grid entry, signs from a byte.
void put8(int8_t* w, uint64_t grid, uint8_t signs) {
  for (int j = 0; j < 8; ++j) {
    const int v = static_cast<int>((grid >> (8 * j)) & 255);
    w[j] = static_cast<int8_t>((signs >> j) & 1 ? -v : v);
  }
}
uint64_t join4(uint32_t lo, uint32_t hi) { return static_cast<uint64_t>(hi) << 32 | lo; }
// IQ1: 8 * grid + delta, grid int8 in {-1, 0, 1}, delta = -1 or +1.
void put8_iq1(int8_t* w, uint64_t grid, int delta) {
  for (int j = 0; j < 8; ++j) w[j] = static_cast<int8_t>(8 * static_cast<int8_t>(grid >> (8 * j)) + delta);
}
int base3_digit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  return (static_cast<uint8_t>(byte * kPow3[n]) * 3) >> 8;
}

}  // namespace

void unpack_q2_k(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockQ2K*>(block);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) u.w[128 * h + 32 * j + l] = static_cast<int8_t>((b.qs[32 * h + l] >> (2 * j)) & 3);
  for (int k = 0; k < 16; ++k) {
    u.sc[k] = static_cast<int16_t>(b.scales[k] & 15);
    u.mn[k] = static_cast<int16_t>(b.scales[k] >> 4);
  }
  u.d = fp16_to_f32(b.d);
  u.dmin = fp16_to_f32(b.dmin);
}

void unpack_q3_k(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockQ3K*>(block);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        const int q2 = (b.qs[32 * h + l] >> (2 * j)) & 3;
        const int high = (b.hmask[l] >> (4 * h + j)) & 1;
        u.w[128 * h + 32 * j + l] = static_cast<int8_t>(q2 - 4 + 4 * high);
      }
  for (int k = 0; k < 16; ++k) {
    const int lo = k < 8 ? b.scales[k] & 15 : b.scales[k - 8] >> 4;
    const int hi = (b.scales[8 + k % 4] >> (2 * (k / 4))) & 3;
    u.sc[k] = static_cast<int16_t>((lo | hi << 4) - 32);
  }
  u.d = fp16_to_f32(b.d);
  clear_mins(u);
}

void unpack_tq1_0(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockTQ1_0*>(block);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) u.w[32 * n + m] = static_cast<int8_t>(base3_digit(b.qs[m], n) - 1);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) u.w[160 + 16 * n + m] = static_cast<int8_t>(base3_digit(b.qs[32 + m], n) - 1);
  for (int n = 0; n < 4; ++n)
    for (int m = 0; m < 4; ++m) u.w[240 + 4 * n + m] = static_cast<int8_t>(base3_digit(b.qh[m], n) - 1);
  for (auto& s : u.sc) s = 1;
  u.d = fp16_to_f32(b.d);
  clear_mins(u);
}

void unpack_tq2_0(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockTQ2_0*>(block);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l)
        u.w[128 * h + 32 * j + l] = static_cast<int8_t>(((b.qs[32 * h + l] >> (2 * j)) & 3) - 1);
  for (auto& s : u.sc) s = 1;
  u.d = fp16_to_f32(b.d);
  clear_mins(u);
}

void unpack_iq2_xxs(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ2XXS*>(block);
  for (int ib = 0; ib < 8; ++ib) {
    uint8_t idx[4];
    uint32_t s;
    std::memcpy(idx, &b.qs[4 * ib], 4);
    std::memcpy(&s, &b.qs[4 * ib + 2], 4);
    for (int l = 0; l < 4; ++l) put8(u.w + 32 * ib + 8 * l, kIq2xxsGrid[idx[l]], iq_signs8(s >> (7 * l)));
    set_sc32(u, ib, 2 * static_cast<int>(s >> 28) + 1);
  }
  u.d = fp16_to_f32(b.d) * 0.125f;
  clear_mins(u);
}

void unpack_iq2_xs(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ2XS*>(block);
  for (int g = 0; g < 32; ++g) put8(u.w + 8 * g, kIq2xsGrid[b.qs[g] & 511], iq_signs8(b.qs[g] >> 9));
  for (int ib = 0; ib < 8; ++ib) {
    u.sc[2 * ib] = static_cast<int16_t>(2 * (b.scales[ib] & 15) + 1);
    u.sc[2 * ib + 1] = static_cast<int16_t>(2 * (b.scales[ib] >> 4) + 1);
  }
  u.d = fp16_to_f32(b.d) * 0.125f;
  clear_mins(u);
}

void unpack_iq2_s(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ2S*>(block);
  for (int g = 0; g < 32; ++g) {
    const int idx = b.qs[g] | ((b.qh[g / 4] >> (2 * (g % 4))) & 3) << 8;
    put8(u.w + 8 * g, kIq2sGrid[idx], b.qs[32 + g]);
  }
  for (int ib = 0; ib < 8; ++ib) {
    u.sc[2 * ib] = static_cast<int16_t>(2 * (b.scales[ib] & 15) + 1);
    u.sc[2 * ib + 1] = static_cast<int16_t>(2 * (b.scales[ib] >> 4) + 1);
  }
  u.d = fp16_to_f32(b.d) * 0.125f;
  clear_mins(u);
}

void unpack_iq3_xxs(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ3XXS*>(block);
  for (int ib = 0; ib < 8; ++ib) {
    uint32_t s;
    std::memcpy(&s, &b.qs[64 + 4 * ib], 4);
    for (int l = 0; l < 4; ++l) {
      const uint64_t g = join4(kIq3xxsGrid[b.qs[8 * ib + 2 * l]], kIq3xxsGrid[b.qs[8 * ib + 2 * l + 1]]);
      put8(u.w + 32 * ib + 8 * l, g, iq_signs8(s >> (7 * l)));
    }
    set_sc32(u, ib, 2 * static_cast<int>(s >> 28) + 1);
  }
  u.d = fp16_to_f32(b.d) * 0.25f;
  clear_mins(u);
}

void unpack_iq3_s(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ3S*>(block);
  for (int g = 0; g < 32; ++g) {  // indices k = 2g, 2g+1 cover elements 8g .. 8g+7
    const int k0 = 2 * g, k1 = 2 * g + 1;
    const int i0 = b.qs[k0] | ((b.qh[k0 / 8] >> (k0 % 8)) & 1) << 8;
    const int i1 = b.qs[k1] | ((b.qh[k1 / 8] >> (k1 % 8)) & 1) << 8;
    put8(u.w + 8 * g, join4(kIq3sGrid[i0], kIq3sGrid[i1]), b.signs[g]);
  }
  for (int ib = 0; ib < 8; ++ib) {
    const int s = ib % 2 == 0 ? b.scales[ib / 2] & 15 : b.scales[ib / 2] >> 4;
    set_sc32(u, ib, 2 * s + 1);
  }
  u.d = fp16_to_f32(b.d);
  clear_mins(u);
}

void unpack_iq1_s(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ1S*>(block);
  for (int ib = 0; ib < 8; ++ib) {
    const uint16_t qh = b.qh[ib];
    const int delta = qh & 0x8000 ? -1 : 1;
    for (int l = 0; l < 4; ++l) {
      const int idx = b.qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8;
      put8_iq1(u.w + 32 * ib + 8 * l, kIq1sGrid[idx], delta);
    }
    set_sc32(u, ib, 2 * ((qh >> 12) & 7) + 1);
  }
  u.d = fp16_to_f32(b.d) * 0.125f;
  clear_mins(u);
}

void unpack_iq1_m(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ1M*>(block);
  uint16_t sc[4];
  std::memcpy(sc, b.scales, 8);
  for (int g = 0; g < 32; ++g) {
    const uint8_t qh = b.qh[g / 2];
    const int hi = g % 2 == 0 ? qh & 7 : (qh >> 4) & 7;
    const int delta = (g % 2 == 0 ? qh & 0x08 : qh & 0x80) ? -1 : 1;
    put8_iq1(u.w + 8 * g, kIq1sGrid[b.qs[g] | hi << 8], delta);
  }
  for (int t = 0; t < 16; ++t) u.sc[t] = static_cast<int16_t>(2 * ((sc[t / 4] >> (3 * (t % 4))) & 7) + 1);
  const uint16_t dbits =
      static_cast<uint16_t>((sc[0] >> 12) | (sc[1] >> 12) << 4 | (sc[2] >> 12) << 8 | (sc[3] >> 12) << 12);
  u.d = fp16_to_f32(dbits) * 0.125f;
  clear_mins(u);
}

void unpack_iq4_xs(const void* block, LowbitBlock& u) {
  const auto& b = *static_cast<const BlockIQ4XS*>(block);
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      u.w[32 * ib + j] = kIq4nlValues[q[j] & 15];
      u.w[32 * ib + 16 + j] = kIq4nlValues[q[j] >> 4];
    }
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | ((b.scales_h >> (2 * ib)) & 3) << 4;
    set_sc32(u, ib, ls - 32);
  }
  u.d = fp16_to_f32(b.d);
  clear_mins(u);
}

LowbitUnpackFn lowbit_unpacker(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return unpack_q2_k;
    case GgmlType::Q3_K: return unpack_q3_k;
    case GgmlType::TQ1_0: return unpack_tq1_0;
    case GgmlType::TQ2_0: return unpack_tq2_0;
    case GgmlType::IQ1_S: return unpack_iq1_s;
    case GgmlType::IQ1_M: return unpack_iq1_m;
    case GgmlType::IQ2_XXS: return unpack_iq2_xxs;
    case GgmlType::IQ2_XS: return unpack_iq2_xs;
    case GgmlType::IQ2_S: return unpack_iq2_s;
    case GgmlType::IQ3_XXS: return unpack_iq3_xxs;
    case GgmlType::IQ3_S: return unpack_iq3_s;
    case GgmlType::IQ4_XS: return unpack_iq4_xs;
    default: return nullptr;
  }
}

}  // namespace moe::ops::cpu
