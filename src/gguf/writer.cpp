// GGUF v2/v3 writer. Used by tools (quantize, convert) and by tests and the fuzz
// test to make valid files. It validates its own input with the reader's rules
// (value types match their variant and range, array depth, tensor shapes and data
// sizes, limits in gguf.h), so every file it writes parses back exactly.
// general.alignment is written when it is not 32 or when the caller set it.
#include <bit>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

namespace moe::gguf {
namespace {

bool is_pow2(uint64_t a) { return a != 0 && (a & (a - 1)) == 0; }
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Checks v against its wire type; returns the number of array elements it holds.
uint64_t validate_value(const Value& v, int depth, const std::string& key) {
  const auto bad = [&](std::string_view why) {
    throw_error("gguf writer: key '{}': {} value {}", key, value_type_name(v.type), why);
  };
  const auto check_uint = [&](uint64_t max) {
    const auto* u = std::get_if<uint64_t>(&v.v);
    if (!u) bad("must hold an unsigned integer");
    if (*u > max) bad(fmt::format("{} is out of range", *u));
  };
  const auto check_int = [&](int64_t min, int64_t max) {
    const auto* i = std::get_if<int64_t>(&v.v);
    if (!i) bad("must hold a signed integer");
    if (*i < min || *i > max) bad(fmt::format("{} is out of range", *i));
  };
  switch (v.type) {
    case ValueType::UINT8: check_uint(UINT8_MAX); return 0;
    case ValueType::UINT16: check_uint(UINT16_MAX); return 0;
    case ValueType::UINT32: check_uint(UINT32_MAX); return 0;
    case ValueType::UINT64: check_uint(UINT64_MAX); return 0;
    case ValueType::INT8: check_int(INT8_MIN, INT8_MAX); return 0;
    case ValueType::INT16: check_int(INT16_MIN, INT16_MAX); return 0;
    case ValueType::INT32: check_int(INT32_MIN, INT32_MAX); return 0;
    case ValueType::INT64: check_int(INT64_MIN, INT64_MAX); return 0;
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: {
      const auto* d = std::get_if<double>(&v.v);
      if (!d) bad("must hold a double");
      if (v.type == ValueType::FLOAT32 && std::isfinite(*d) && std::fabs(*d) > FLT_MAX)
        bad(fmt::format("{} does not fit in float32", *d));
      return 0;
    }
    case ValueType::BOOL:
      if (!std::holds_alternative<bool>(v.v)) bad("must hold a bool");
      return 0;
    case ValueType::STRING:
      if (!std::holds_alternative<std::string>(v.v)) bad("must hold a string");
      return 0;
    case ValueType::ARRAY: {
      const auto* a = std::get_if<Array>(&v.v);
      if (!a) bad("must hold an Array");
      if (depth >= kMaxArrayDepth)
        throw_error("gguf writer: key '{}': arrays nested deeper than the limit of {} levels", key,
                    kMaxArrayDepth);
      if (static_cast<uint32_t>(a->elem_type) > static_cast<uint32_t>(ValueType::FLOAT64))
        throw_error("gguf writer: key '{}': unknown array element type {}", key,
                    static_cast<uint32_t>(a->elem_type));
      uint64_t n = a->items.size();
      for (size_t i = 0; i < a->items.size(); ++i) {
        if (a->items[i].type != a->elem_type)
          throw_error("gguf writer: key '{}': array element {} has type {}, expected {}", key, i,
                      value_type_name(a->items[i].type), value_type_name(a->elem_type));
        n += validate_value(a->items[i], depth + 1, key);
      }
      return n;
    }
  }
  throw_error("gguf writer: key '{}': unknown value type {}", key, static_cast<uint32_t>(v.type));
}

class Out {
 public:
  explicit Out(std::vector<uint8_t>& b) : b_(b) {}
  void le(uint64_t x, int n) {
    for (int i = 0; i < n; ++i) b_.push_back(static_cast<uint8_t>(x >> (8 * i)));
  }
  void u32(uint32_t x) { le(x, 4); }
  void u64(uint64_t x) { le(x, 8); }
  void str(std::string_view s) {
    u64(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t a) { b_.resize(static_cast<size_t>(align_up(b_.size(), a)), 0); }

  void value(const Value& v) {
    switch (v.type) {
      case ValueType::UINT8:
      case ValueType::INT8:
      case ValueType::BOOL: le(bits(v), 1); break;
      case ValueType::UINT16:
      case ValueType::INT16: le(bits(v), 2); break;
      case ValueType::UINT32:
      case ValueType::INT32: le(bits(v), 4); break;
      case ValueType::UINT64:
      case ValueType::INT64: le(bits(v), 8); break;
      case ValueType::FLOAT32:
        u32(std::bit_cast<uint32_t>(static_cast<float>(std::get<double>(v.v))));
        break;
      case ValueType::FLOAT64: u64(std::bit_cast<uint64_t>(std::get<double>(v.v))); break;
      case ValueType::STRING: str(std::get<std::string>(v.v)); break;
      case ValueType::ARRAY: {
        const auto& a = std::get<Array>(v.v);
        u32(static_cast<uint32_t>(a.elem_type));
        u64(a.items.size());
        for (const auto& x : a.items) value(x);
        break;
      }
    }
  }

 private:
  static uint64_t bits(const Value& v) {
    if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v.v)) return static_cast<uint64_t>(*i);
    return std::get<bool>(v.v) ? 1 : 0;
  }
  std::vector<uint8_t>& b_;
};

}  // namespace

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
  if (!is_pow2(alignment) || alignment > UINT32_MAX)
    throw_error("gguf writer: alignment {} must be a nonzero power of two below 2^32", alignment);
  if (alignment != 32) kv_.emplace_back("general.alignment", Value::u32(static_cast<uint32_t>(alignment)));
}

void Writer::set(const std::string& key, Value v) {
  if (key.empty()) throw_error("gguf writer: metadata key must not be empty");
  validate_value(v, 0, key);
  if (key == "general.alignment") {
    if (v.type != ValueType::UINT32)
      throw_error("gguf writer: general.alignment has type {}, expected uint32",
                  value_type_name(v.type));
    const uint64_t a = std::get<uint64_t>(v.v);
    if (!is_pow2(a))
      throw_error("gguf writer: general.alignment is {}, expected a nonzero power of two", a);
    alignment_ = a;
  }
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  if (kv_.size() >= kMaxMetadataKvs)
    throw_error("gguf writer: more than {} metadata entries", kMaxMetadataKvs);
  kv_.emplace_back(key, std::move(v));
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                        std::span<const uint8_t> data) {
  if (name.empty()) throw_error("gguf writer: tensor name must not be empty");
  for (const auto& t : tensors_)
    if (t.name == name) throw_error("gguf writer: duplicate tensor name '{}'", name);
  if (tensors_.size() >= kMaxTensors)
    throw_error("gguf writer: more than {} tensors", kMaxTensors);
  const auto tr = type_traits(static_cast<uint32_t>(type));
  if (!tr) throw_error("gguf writer: tensor '{}': unknown ggml type id {}", name,
                       static_cast<uint32_t>(type));
  if (ne.empty() || ne.size() > 4)
    throw_error("gguf writer: tensor '{}': {} dimensions, expected 1..4", name, ne.size());
  uint64_t elements = 1, bytes = 1;
  bool zero = false, overflow = false;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 0) throw_error("gguf writer: tensor '{}': ne[{}] = {} is negative", name, d, ne[d]);
    const uint64_t f = ne[d] == 0 ? 1 : static_cast<uint64_t>(ne[d]);
    zero = zero || ne[d] == 0;
    overflow = overflow || __builtin_mul_overflow(elements, f, &elements);
    if (d == 0) {
      if (ne[0] % tr->block_size != 0)
        throw_error("gguf writer: tensor '{}': ne[0] = {} is not a multiple of the block size {} of "
                    "type {}", name, ne[0], tr->block_size, tr->name);
      bytes = f % static_cast<uint64_t>(tr->block_size) == 0
                  ? f / static_cast<uint64_t>(tr->block_size) : 1;
      overflow = overflow || __builtin_mul_overflow(bytes, tr->type_size, &bytes);
    } else {
      overflow = overflow || __builtin_mul_overflow(bytes, f, &bytes);
    }
  }
  if (overflow || bytes >= kMaxTensorBytes || elements >= kMaxTensorBytes)
    throw_error("gguf writer: tensor '{}': shape overflows 2^62 elements or bytes", name);
  if (zero) bytes = 0;
  if (data.size() != bytes)
    throw_error("gguf writer: tensor '{}': data holds {} bytes, expected {} for {} dimensions of "
                "type {}", name, data.size(), bytes, ne.size(), tr->name);
  tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(data.begin(), data.end())});
}

std::vector<uint8_t> Writer::to_bytes(uint32_t version) const {
  if (version != 2 && version != 3)
    throw_error("gguf writer: cannot write GGUF version {}, expected 2 or 3", version);
  uint64_t n_values = 0;
  for (const auto& [k, v] : kv_) n_values += validate_value(v, 0, k);
  if (n_values > kMaxMetadataValues)
    throw_error("gguf writer: {} array elements exceed the limit of {}", n_values,
                kMaxMetadataValues);

  std::vector<uint8_t> b;
  Out out(b);
  out.u32(0x46554747);  // "GGUF" in little-endian order
  out.u32(version);
  out.u64(tensors_.size());
  out.u64(kv_.size());
  for (const auto& [k, v] : kv_) {
    out.str(k);
    out.u32(static_cast<uint32_t>(v.type));
    out.value(v);
  }
  std::vector<uint64_t> offsets;
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    off = align_up(off, alignment_);
    offsets.push_back(off);
    off += t.data.size();
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto& t = tensors_[i];
    out.str(t.name);
    out.u32(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) out.u64(static_cast<uint64_t>(n));
    out.u32(static_cast<uint32_t>(t.type));
    out.u64(offsets[i]);
  }
  if (tensors_.empty()) return b;
  out.pad_to(alignment_);
  const size_t data_start = b.size();
  b.reserve(data_start + static_cast<size_t>(align_up(off, alignment_)));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    b.resize(data_start + static_cast<size_t>(offsets[i]), 0);
    b.insert(b.end(), tensors_[i].data.begin(), tensors_[i].data.end());
  }
  out.pad_to(alignment_);
  return b;
}

void Writer::write(const std::string& path, uint32_t version) const {
  const std::vector<uint8_t> b = to_bytes(version);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw_error("{}: cannot create: {}", path, std::strerror(errno));
  const size_t n = b.empty() ? 0 : std::fwrite(b.data(), 1, b.size(), f);
  const int write_errno = errno;
  if (n != b.size()) {
    std::fclose(f);
    throw_error("{}: write of {} bytes failed: {}", path, b.size(), std::strerror(write_errno));
  }
  if (std::fclose(f) != 0) throw_error("{}: close failed: {}", path, std::strerror(errno));
}

}  // namespace moe::gguf
