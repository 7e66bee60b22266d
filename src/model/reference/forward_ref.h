// The scalar reference forward pass: obviously correct, slow, kept for good.
// One token at a time, every weight dequantized to double, every sum in double,
// no threads, no SIMD, no batching, no grouping by expert: it evaluates the
// published formulas directly. Tests compare the CPU forward pass against it.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "gguf/types.h"
#include "model/model.h"

namespace moe::reference {

// Optional rounding of an activation row before it is multiplied by a weight of
// type `weight_type` (llama.cpp rounds activations to q8_0/q8_K/fp16). Identity if empty.
using ActivationRounding = std::function<void(GgmlType weight_type, std::vector<double>& row)>;

// Logits [tokens.size(), n_vocab], row i after reading tokens 0..i.
std::vector<float> forward(const Model& model, std::span<const int32_t> tokens,
                           const ActivationRounding& round = {});

}  // namespace moe::reference
