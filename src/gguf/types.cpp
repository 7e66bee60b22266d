// The ggml_type table: block sizes and bytes per block from the GGUF specification.
#include "gguf/types.h"

#include <array>
#include <cctype>
#include <string>

#include "base/error.h"

namespace moe {
namespace {

struct Entry {
  uint32_t id;
  TypeTraits t;
};

// QK_K = 256 for K-quants.
constexpr std::array kTable = {
    Entry{0, {"f32", 1, 4, true}},        Entry{1, {"f16", 1, 2, true}},
    Entry{2, {"q4_0", 32, 18, true}},     Entry{3, {"q4_1", 32, 20, true}},
    Entry{6, {"q5_0", 32, 22, true}},     Entry{7, {"q5_1", 32, 24, true}},
    Entry{8, {"q8_0", 32, 34, true}},     Entry{9, {"q8_1", 32, 36, false}},
    Entry{10, {"q2_K", 256, 84, true}},  Entry{11, {"q3_K", 256, 110, true}},
    Entry{12, {"q4_K", 256, 144, true}},  Entry{13, {"q5_K", 256, 176, true}},
    Entry{14, {"q6_K", 256, 210, true}},  Entry{15, {"q8_K", 256, 292, false}},
    Entry{16, {"iq2_xxs", 256, 66, true}}, Entry{17, {"iq2_xs", 256, 74, true}},
    Entry{18, {"iq3_xxs", 256, 98, true}}, Entry{19, {"iq1_s", 256, 50, true}},
    Entry{20, {"iq4_nl", 32, 18, true}}, Entry{21, {"iq3_s", 256, 110, true}},
    Entry{22, {"iq2_s", 256, 82, true}}, Entry{23, {"iq4_xs", 256, 136, true}},
    Entry{24, {"i8", 1, 1, false}},       Entry{25, {"i16", 1, 2, false}},
    Entry{26, {"i32", 1, 4, false}},      Entry{27, {"i64", 1, 8, false}},
    Entry{28, {"f64", 1, 8, false}},      Entry{29, {"iq1_m", 256, 56, true}},
    Entry{30, {"bf16", 1, 2, true}},      Entry{34, {"tq1_0", 256, 54, true}},
    Entry{35, {"tq2_0", 256, 66, true}}, Entry{39, {"mxfp4", 32, 17, true}},
};

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t id) {
  for (const auto& e : kTable)
    if (e.id == id) return e.t;
  return std::nullopt;
}

const TypeTraits& traits(GgmlType t) {
  for (const auto& e : kTable)
    if (e.id == static_cast<uint32_t>(t)) return e.t;
  throw_error("unknown ggml type id {}", static_cast<uint32_t>(t));
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : kTable) {
    std::string n(e.t.name);
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n == lower) return static_cast<GgmlType>(e.id);
  }
  return std::nullopt;
}

}  // namespace moe
