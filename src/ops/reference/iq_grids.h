// Lookup tables of the i-quant and IQ4 weight types (GGUF/ggml format facts; the
// big grids live in iq_grids.cpp). Shared by the scalar references
// (quant_lowbit_ref.cpp) and the kernels' unpackers (ops/cpu/quant_lowbit_unpack.cpp).
#pragma once
#include <cstdint>

namespace moe::ops {

extern const uint64_t kIq2xxsGrid[256];  // IQ2_XXS: 8 magnitudes per entry, bytes in {8, 25, 43}
extern const uint64_t kIq2xsGrid[512];   // IQ2_XS
extern const uint64_t kIq2sGrid[1024];   // IQ2_S
extern const uint32_t kIq3xxsGrid[256];  // IQ3_XXS: 4 magnitudes per entry, 4..62
extern const uint32_t kIq3sGrid[512];    // IQ3_S: 4 magnitudes per entry, odd 1..15
extern const uint64_t kIq1sGrid[2048];   // IQ1_S / IQ1_M: 8 int8 values in {-1, 0, 1}

// The 16 non-linear levels of IQ4_NL / IQ4_XS.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

// IQ2/IQ3 sign groups: 7 stored sign bits s (bit j = element j negative) and an
// implied 8th bit that makes the number of negative signs even.
inline constexpr uint8_t iq_signs8(uint32_t s7) {
  return static_cast<uint8_t>((s7 & 127) | (__builtin_popcount(s7 & 127) & 1) << 7);
}

// Element j (0..7) of a grid entry.
inline uint8_t grid_byte(uint64_t e, int j) { return static_cast<uint8_t>(e >> (8 * j)); }

}  // namespace moe::ops
