// Jinja values: conversion from JSON, truthiness, printing and tojson.
// Printing and tojson follow @huggingface/jinja (and Python's json.dumps with
// ensure_ascii=False): ", " and ": " separators, dict keys in insertion order.
#include <cmath>

#include "base/error.h"
#include "tokenizer/jinja.h"

namespace moe::jinja {

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array a;
      for (const auto& x : j) a.push_back(from_json(x));
      return list(std::move(a));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      for (auto it = j.begin(); it != j.end(); ++it) o.emplace_back(it.key(), from_json(it.value()));
      return dict(std::move(o));
    }
    default: return Value();
  }
}

bool Value::truthy() const {
  switch (kind) {
    case Undefined: case None: return false;
    case Bool: return b;
    case Int: return i != 0;
    case Float: return f != 0.0;
    case String: return !s.empty();
    case List: return !arr->empty();
    case Dict: return !obj->empty();
    case Func: return true;
  }
  return false;
}

const Value* Value::get(const std::string& key) const {
  if (kind != Dict) return nullptr;
  for (const auto& [k, v] : *obj)
    if (k == key) return &v;
  return nullptr;
}

void Value::set(const std::string& key, Value v) {
  for (auto& [k, old] : *obj)
    if (k == key) { old = std::move(v); return; }
  obj->emplace_back(key, std::move(v));
}

static std::string float_str(double f) {
  if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 1e16) return fmt::format("{:.1f}", f);
  return fmt::format("{}", f);
}

std::string Value::to_string() const {
  switch (kind) {
    case Undefined: return "";
    case None: return "None";
    case Bool: return b ? "True" : "False";
    case Int: return std::to_string(i);
    case Float: return float_str(f);
    case String: return s;
    case List: case Dict: return to_json();
    case Func: return "<function>";
  }
  return "";
}

static void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::string Value::to_json(int indent, int depth) const {
  std::string out;
  std::string item_sep = indent >= 0 ? "," : ", ";
  std::string pad, end_pad;
  if (indent >= 0) {
    pad.push_back('\n');
    pad.append(static_cast<size_t>(indent * (depth + 1)), ' ');
    end_pad.push_back('\n');
    end_pad.append(static_cast<size_t>(indent * depth), ' ');
  }
  switch (kind) {
    case Undefined: case None: return "null";
    case Bool: return b ? "true" : "false";
    case Int: return std::to_string(i);
    case Float: return std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 1e16 ? fmt::format("{:.0f}", f) : fmt::format("{}", f);
    case String: json_string(s, out); return out;
    case List: {
      if (arr->empty()) return "[]";
      out += '[';
      for (size_t k = 0; k < arr->size(); ++k) {
        if (k) out += item_sep;
        out += pad;
        out += (*arr)[k].to_json(indent, depth + 1);
      }
      out += end_pad;
      out += ']';
      return out;
    }
    case Dict: {
      if (obj->empty()) return "{}";
      out += '{';
      bool first = true;
      for (const auto& [k, v] : *obj) {
        if (!first) out += item_sep;
        first = false;
        out += pad;
        json_string(k, out);
        out += ": ";
        out += v.to_json(indent, depth + 1);
      }
      out += end_pad;
      out += '}';
      return out;
    }
    case Func: throw_error("chat template: cannot convert a function to JSON");
  }
  return out;
}

std::string Value::type_name() const {
  static const char* names[] = {"undefined", "none", "boolean", "integer", "float", "string", "list", "dict", "function"};
  return is_namespace ? "namespace" : names[kind];
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
  if (a.kind == Value::Bool && b.is_number()) return (a.b ? 1.0 : 0.0) == b.as_double();
  if (b.kind == Value::Bool && a.is_number()) return (b.b ? 1.0 : 0.0) == a.as_double();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Undefined: case Value::None: return true;
    case Value::Bool: return a.b == b.b;
    case Value::String: return a.s == b.s;
    case Value::List:
      if (a.arr->size() != b.arr->size()) return false;
      for (size_t k = 0; k < a.arr->size(); ++k)
        if (!values_equal((*a.arr)[k], (*b.arr)[k])) return false;
      return true;
    case Value::Dict:
      if (a.obj->size() != b.obj->size()) return false;
      for (const auto& [k, v] : *a.obj) {
        const Value* o = b.get(k);
        if (!o || !values_equal(v, *o)) return false;
      }
      return true;
    default: return a.fn == b.fn;
  }
}

}  // namespace moe::jinja
