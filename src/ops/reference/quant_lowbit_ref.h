// Scalar reference decoders of the low-bit weight types (Q2_K, Q3_K, TQ1_0, TQ2_0,
// IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS). Called by
// dequantize_row_ref (quant_ref.cpp); each decoder evaluates its type's element
// formula in float, one element at a time, independently of the kernels' integer
// unpackers in ops/cpu/quant_lowbit_unpack.cpp, which the tests check against it.
#pragma once
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops::ref {

// Decodes nb blocks of type into dst (nb * block_size floats). Returns false for a
// type that is not one of the low-bit types above.
bool dequantize_lowbit_ref(GgmlType type, const void* src, float* dst, int64_t nb);

}  // namespace moe::ops::ref
