// Tensor element types as the GGUF specification numbers them (ggml_type),
// with block size and bytes per block. The layouts themselves live in ops/.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace moe {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeTraits {
  std::string_view name;  // "q4_K"
  int64_t block_size;     // elements per block
  size_t type_size;       // bytes per block
  bool supported;         // does moe compute with it (dequantize + dot)?
};

// nullopt for an id the specification does not define.
std::optional<TypeTraits> type_traits(uint32_t id);
const TypeTraits& traits(GgmlType t);  // t must be a known type
inline std::string_view type_name(GgmlType t) { return traits(t).name; }
std::optional<GgmlType> type_from_name(std::string_view name);  // "q8_0", "Q8_0", "f16", ...

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(GgmlType t, int64_t n) {
  const auto& tr = traits(t);
  return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

}  // namespace moe
