// GGUF v2/v3 reader and writer.
//
// Reader: File::open(path) memory-maps the file, parses and validates the header,
// every metadata key/value and every tensor info, and exposes zero-copy views of
// tensor data. File::parse(bytes, name) does the same over a caller-owned buffer
// (tests, fuzzing). Every malformed input throws moe::Error whose message names
// the file, the byte offset, what was expected and what was found.
//
// Writer: collects metadata and tensors and writes a v3 (or v2) file with the
// chosen alignment (general.alignment, default 32). It validates its input with
// the reader's rules, so what it writes always parses back exactly.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/mmap.h"
#include "gguf/types.h"

namespace moe::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;  // nested arrays allowed
};

// One metadata value. Integers keep their signedness in the variant; `type`
// is the exact wire type.
struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> v;

  static Value u8(uint8_t x) { return {ValueType::UINT8, uint64_t{x}}; }
  static Value i8(int8_t x) { return {ValueType::INT8, int64_t{x}}; }
  static Value u16(uint16_t x) { return {ValueType::UINT16, uint64_t{x}}; }
  static Value i16(int16_t x) { return {ValueType::INT16, int64_t{x}}; }
  static Value u32(uint32_t x) { return {ValueType::UINT32, uint64_t{x}}; }
  static Value i32(int32_t x) { return {ValueType::INT32, int64_t{x}}; }
  static Value u64(uint64_t x) { return {ValueType::UINT64, x}; }
  static Value i64(int64_t x) { return {ValueType::INT64, x}; }
  static Value f32(float x) { return {ValueType::FLOAT32, double{x}}; }
  static Value f64(double x) { return {ValueType::FLOAT64, x}; }
  static Value boolean(bool x) { return {ValueType::BOOL, x}; }
  static Value str(std::string x) { return {ValueType::STRING, std::move(x)}; }
  static Value array(ValueType elem, std::vector<Value> items) {
    return {ValueType::ARRAY, Array{elem, std::move(items)}};
  }
  static Value strings(const std::vector<std::string>& xs);
  static Value f32s(const std::vector<float>& xs);
  static Value i32s(const std::vector<int32_t>& xs);

  bool is_integer() const;
  bool is_number() const;  // integer or float
  // Conversions; throw moe::Error if the value is not of a compatible kind.
  int64_t as_int() const;
  double as_float() const;
  const std::string& as_string() const;
  const Array& as_array() const;
};

// Exact equality: same wire type, same variant alternative, same value; floats
// compare bit for bit (so NaN == NaN with the same payload, and -0.0 != 0.0).
bool operator==(const Value& a, const Value& b);
bool operator==(const Array& a, const Array& b);

// Limits the reader enforces on untrusted input; the writer enforces the same,
// so it never writes a file the reader would reject.
inline constexpr int kMaxArrayDepth = 8;                       // nesting levels of arrays
inline constexpr uint64_t kMaxMetadataKvs = uint64_t{1} << 20;  // metadata entries
inline constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;  // array elements in all
inline constexpr uint64_t kMaxTensors = uint64_t{1} << 22;
inline constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 62;  // also bounds element counts

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension
  uint64_t offset = 0;           // relative to the start of the data section
  size_t nbytes = 0;
  const void* data = nullptr;    // view into the mapping (reader only)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return moe::row_bytes(type, ne[0]); }
};

class File {
 public:
  static File open(const std::string& path);
  static File parse(std::span<const uint8_t> bytes, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t file_size() const { return bytes_.size(); }
  const MappedFile* mapping() const { return map_.get(); }  // null for parse()

  // Metadata, in file order; find() returns nullptr for a missing key.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  // Typed getters: nullopt when missing; moe::Error naming file+key when the type is wrong.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const Array* get_array(std::string_view key) const;
  // Required variants: moe::Error "file: missing required key 'k'".
  int64_t require_int(std::string_view key) const;
  std::string require_string(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;  // nullptr if missing

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;  // null for parse()
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;

  friend class Parser;
};

class Writer {
 public:
  explicit Writer(uint64_t alignment = 32);
  void set(const std::string& key, Value v);  // replaces an existing key
  // data must hold row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3] bytes; it is copied.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                  std::span<const uint8_t> data);
  std::vector<uint8_t> to_bytes(uint32_t version = 3) const;
  void write(const std::string& path, uint32_t version = 3) const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace moe::gguf
