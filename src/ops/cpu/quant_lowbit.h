// The common integer form of the 256-element low-bit weight blocks (Q2_K, Q3_K, TQ1_0,
// TQ2_0, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_XS) that the dot
// kernels multiply with q8_K activations:
//   x[e] = d * sc[e / 16] * w[e] - dmin * mn[e / 16],  w int8 with |w| <= 127,
// so dot(x, a) = d_a * (d * sum_k sc[k] sum_{e in k} w[e] q_a[e] - dmin * sum_k mn[k] bsums[k]).
// Scales that the format gives per 32 elements appear twice; fractional factors of the
// format are moved into d (IQ2: (2s + 1) / 8, IQ3_XXS: (2s + 1) / 4, IQ1: 8 * grid +- 1
// with d / 8). The unpackers here (quant_lowbit_unpack.cpp, plain C++) serve the portable
// kernels; the SIMD paths have vector unpackers into the same form (quant_simd_lowbit.h).
// Tests check both against the float decoders of ops/reference/quant_lowbit_ref.cpp.
#pragma once
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops::cpu {

struct LowbitBlock {
  int8_t w[256];
  int16_t sc[16];
  int16_t mn[16];  // zero for every type but Q2_K
  float d, dmin;   // dmin is zero for every type but Q2_K
};

using LowbitUnpackFn = void (*)(const void* block, LowbitBlock& u);

void unpack_q2_k(const void* block, LowbitBlock& u);
void unpack_q3_k(const void* block, LowbitBlock& u);
void unpack_tq1_0(const void* block, LowbitBlock& u);
void unpack_tq2_0(const void* block, LowbitBlock& u);
void unpack_iq1_s(const void* block, LowbitBlock& u);
void unpack_iq1_m(const void* block, LowbitBlock& u);
void unpack_iq2_xxs(const void* block, LowbitBlock& u);
void unpack_iq2_xs(const void* block, LowbitBlock& u);
void unpack_iq2_s(const void* block, LowbitBlock& u);
void unpack_iq3_xxs(const void* block, LowbitBlock& u);
void unpack_iq3_s(const void* block, LowbitBlock& u);
void unpack_iq4_xs(const void* block, LowbitBlock& u);

// The unpacker of a type above; nullptr for any other type.
LowbitUnpackFn lowbit_unpacker(GgmlType t);

}  // namespace moe::ops::cpu
