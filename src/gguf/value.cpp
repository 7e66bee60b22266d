// GGUF metadata values: type names, convenience constructors, conversions and
// exact equality. Used by the reader (File getters), the writer and tools that
// print metadata. Conversions throw moe::Error without file context; File's
// getters add the file name and key.
#include <cstring>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

namespace moe::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

Value Value::strings(const std::vector<std::string>& xs) {
  std::vector<Value> items;
  items.reserve(xs.size());
  for (const auto& x : xs) items.push_back(str(x));
  return array(ValueType::STRING, std::move(items));
}

Value Value::f32s(const std::vector<float>& xs) {
  std::vector<Value> items;
  items.reserve(xs.size());
  for (float x : xs) items.push_back(f32(x));
  return array(ValueType::FLOAT32, std::move(items));
}

Value Value::i32s(const std::vector<int32_t>& xs) {
  std::vector<Value> items;
  items.reserve(xs.size());
  for (int32_t x : xs) items.push_back(i32(x));
  return array(ValueType::INT32, std::move(items));
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64: return true;
    default: return false;
  }
}

bool Value::is_number() const {
  return is_integer() || type == ValueType::FLOAT32 || type == ValueType::FLOAT64;
}

int64_t Value::as_int() const {
  if (is_integer()) {
    if (const auto* u = std::get_if<uint64_t>(&v)) {
      if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw_error("{} value {} does not fit in int64", value_type_name(type), *u);
      return static_cast<int64_t>(*u);
    }
    if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  }
  throw_error("value of type {} is not an integer", value_type_name(type));
}

double Value::as_float() const {
  if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
  } else if (is_integer()) {
    if (const auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  }
  throw_error("value of type {} is not a number", value_type_name(type));
}

const std::string& Value::as_string() const {
  if (type == ValueType::STRING)
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
  throw_error("value of type {} is not a string", value_type_name(type));
}

const Array& Value::as_array() const {
  if (type == ValueType::ARRAY)
    if (const auto* a = std::get_if<Array>(&v)) return *a;
  throw_error("value of type {} is not an array", value_type_name(type));
}

bool operator==(const Array& a, const Array& b) {
  if (a.elem_type != b.elem_type || a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!(a.items[i] == b.items[i])) return false;
  return true;
}

bool operator==(const Value& a, const Value& b) {
  if (a.type != b.type || a.v.index() != b.v.index()) return false;
  if (const auto* x = std::get_if<double>(&a.v)) {
    const double y = std::get<double>(b.v);
    return std::memcmp(x, &y, sizeof(double)) == 0;
  }
  if (const auto* x = std::get_if<uint64_t>(&a.v)) return *x == std::get<uint64_t>(b.v);
  if (const auto* x = std::get_if<int64_t>(&a.v)) return *x == std::get<int64_t>(b.v);
  if (const auto* x = std::get_if<bool>(&a.v)) return *x == std::get<bool>(b.v);
  if (const auto* x = std::get_if<std::string>(&a.v)) return *x == std::get<std::string>(b.v);
  return std::get<Array>(a.v) == std::get<Array>(b.v);
}

}  // namespace moe::gguf
