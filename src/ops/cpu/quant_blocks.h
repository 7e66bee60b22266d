// Block layouts of the GGUF/ggml weight and activation types, byte for byte
// (little-endian, fp16 fields stored as raw uint16_t bits). Shared by the scalar
// references (ops/reference/quant_ref.cpp) and every kernel in ops/cpu/.
// Invariant: sizeof(Block*) equals the type_size of gguf/types.cpp, checked below.
#pragma once
#include <cstdint>

namespace moe::ops {

inline constexpr int kQK = 32;    // elements of a 32-block
inline constexpr int kQKK = 256;  // elements of a K-quant super-block

struct BlockQ8_0 {  // x = d * qs
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ8_1 {  // x = d * qs, s = d * sum(qs)
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};
struct BlockQ4_0 {  // x = d * (q - 8); q[j] = qs[j] & 15, q[j+16] = qs[j] >> 4
  uint16_t d;
  uint8_t qs[16];
};
struct BlockQ4_1 {  // x = d * q + m
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};
struct BlockQ5_0 {  // x = d * (q5 - 16); bit 4 of element j = bit j of qh (LE uint32)
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ5_1 {  // x = d * q5 + m
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockMxfp4 {  // x = kE2M1[nibble] * 2^(e - 127)
  uint8_t e;
  uint8_t qs[16];
};
struct BlockQ4K {  // x = d * sc * q - dmin * m, 8 sub-blocks of 32
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ5K {  // as Q4_K, plus the 5th bit in qh
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6K {  // x = d * sc * (q6 - 32), 16 sub-blocks of 16
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct BlockQ8K {  // x = d * qs, bsums[k] = sum of qs[16k .. 16k+15]
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// ---- low-bit types (Q2_K, Q3_K, ternary, i-quants); element formulas in
// ops/reference/quant_lowbit_ref.cpp ----
struct BlockQ2K {  // x = d * (sc & 15) * q - dmin * (sc >> 4), 16 sub-blocks of 16, q 2 bits
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3K {  // x = d * (sc6 - 32) * (q2 - (hmask bit ? 0 : 4)), 16 sub-blocks of 16
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
struct BlockTQ1_0 {  // x = d * (t - 1), t in {0,1,2}: 5 base-3 digits per qs byte, 4 per qh byte
  uint8_t qs[48];
  uint8_t qh[4];
  uint16_t d;
};
struct BlockTQ2_0 {  // x = d * (q - 1), q 2 bits
  uint8_t qs[64];
  uint16_t d;
};
struct BlockIQ2XXS {  // per 32: 4 grid indices (8 bits), 4 x 7 sign bits, 4-bit scale
  uint16_t d;
  uint16_t qs[32];
};
struct BlockIQ2XS {  // per 8: 9-bit grid index + 7 sign bits; 4-bit scale per 16
  uint16_t d;
  uint16_t qs[32];
  uint8_t scales[8];
};
struct BlockIQ2S {  // per 8: 10-bit grid index (qs + 2 bits of qh), 8 sign bits; scale per 16
  uint16_t d;
  uint8_t qs[64];  // 32 index bytes, then 32 sign bytes
  uint8_t qh[8];
  uint8_t scales[8];
};
struct BlockIQ3XXS {  // per 4: 8-bit grid index; per 32: 4 x 7 sign bits + 4-bit scale
  uint16_t d;
  uint8_t qs[96];
};
struct BlockIQ3S {  // per 4: 9-bit grid index; 8 sign bits per 8; 4-bit scale per 32
  uint16_t d;
  uint8_t qs[64];
  uint8_t qh[8];
  uint8_t signs[32];
  uint8_t scales[4];
};
struct BlockIQ1S {  // per 8: 11-bit index into the ternary grid; per 32: 3-bit scale, delta sign
  uint16_t d;
  uint8_t qs[32];
  uint16_t qh[8];
};
struct BlockIQ1M {  // per 8: 11-bit index + delta sign; per 16: 3-bit scale; fp16 d in the scales' top nibbles
  uint8_t qs[32];
  uint8_t qh[16];
  uint8_t scales[8];
};
struct BlockIQ4NL {  // x = d * kIq4nlValues[nibble], blocks of 32 (q4_0 nibble order)
  uint16_t d;
  uint8_t qs[16];
};
struct BlockIQ4XS {  // x = d * (ls6 - 32) * kIq4nlValues[nibble], 8 sub-blocks of 32
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};

static_assert(sizeof(BlockQ2K) == 84 && sizeof(BlockQ3K) == 110);
static_assert(sizeof(BlockTQ1_0) == 54 && sizeof(BlockTQ2_0) == 66);
static_assert(sizeof(BlockIQ2XXS) == 66 && sizeof(BlockIQ2XS) == 74 && sizeof(BlockIQ2S) == 82);
static_assert(sizeof(BlockIQ3XXS) == 98 && sizeof(BlockIQ3S) == 110);
static_assert(sizeof(BlockIQ1S) == 50 && sizeof(BlockIQ1M) == 56);
static_assert(sizeof(BlockIQ4NL) == 18 && sizeof(BlockIQ4XS) == 136);

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockMxfp4) == 17);
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210);
static_assert(sizeof(BlockQ8K) == 292);

// FP4 E2M1 values of the 16 MXFP4 nibbles, and the same values doubled (ggml's
// int8 table, used with the scale 2^(e - 128)).
inline constexpr float kE2M1[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                    -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
inline constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Unpack the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace moe::ops
