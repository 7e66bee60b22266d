// The scalar reference forward pass: obviously correct, slow, kept for good.
// One token at a time, every weight dequantized to double, every sum in double,
// no threads, no SIMD, no batching, no grouping by expert: it evaluates the
// published formulas directly. Tests compare the CPU forward pass against it.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "gguf/types.h"
#include "model/model.h"

namespace moe::reference {

// Logits [tokens.size(), n_vocab], row i after reading tokens 0..i.
// round_activations: round each activation row to the weight type's dot-product
// partner before a matrix product (q8_0 / q8_1 / q8_K / fp16 / bf16, as llama.cpp
// does) using the scalar quantizers and dot products of ops/reference; otherwise
// every product is exact in double over the dequantized weights.
// near_ties (optional) counts the decisions that float noise could flip: an
// activation within 5e-7 (relative) of a q8 rounding boundary, or a k-th/(k+1)-th
// router score gap below 1e-6. Tests pick inputs with none, as the fixtures do.
std::vector<float> forward(const Model& model, std::span<const int32_t> tokens,
                           bool round_activations = false, int64_t* near_ties = nullptr);

}  // namespace moe::reference
