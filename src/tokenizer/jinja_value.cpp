// Jinja values: conversion from JSON, truthiness, printing and tojson.
// Printing and tojson follow @huggingface/jinja (and Python's json.dumps with
// ensure_ascii=False): ", " and ": " separators, dict keys in insertion order.
#include <cmath>

#include "base/error.h"
#include "tokenizer/jinja.h"

namespace moe::jinja {

namespace {

// Thrown past the depth limit and caught at each level on the way out, which
// adds that level's key or index (innermost first): the error names the path.
struct TooDeep {
  std::vector<std::string> segments;
};

// A client's key as it may appear in an error: printable ASCII, at most 64 bytes
// (the message is echoed into a JSON response, so no invalid UTF-8 gets in).
std::string printable_key(const std::string& k) {
  std::string out;
  for (size_t i = 0; i < k.size() && i < 64; ++i) out += k[i] >= 0x20 && k[i] < 0x7f ? k[i] : '?';
  if (k.size() > 64) out += "...";
  return out;
}

template <typename J>
Value convert(const J& j, int depth, int max_depth) {
  if ((j.is_array() || j.is_object()) && depth > max_depth) throw TooDeep{};
  switch (j.type()) {
    case J::value_t::null: return Value::none();
    case J::value_t::boolean: return Value::boolean(j.template get<bool>());
    case J::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case J::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case J::value_t::number_float: return Value::number(j.template get<double>());
    case J::value_t::string: return Value::str(j.template get<std::string>());
    case J::value_t::array: {
      Array a;
      a.reserve(j.size());
      size_t k = 0;
      for (const auto& x : j) {
        try {
          a.push_back(convert(x, depth + 1, max_depth));
        } catch (TooDeep& e) {
          e.segments.push_back(fmt::format("[{}]", k));
          throw;
        }
        ++k;
      }
      return Value::list(std::move(a));
    }
    case J::value_t::object: {
      Object o;
      o.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        try {
          o.emplace_back(it.key(), convert(it.value(), depth + 1, max_depth));
        } catch (TooDeep& e) {
          e.segments.push_back("." + printable_key(it.key()));
          throw;
        }
      }
      return Value::dict(std::move(o));
    }
    default: return Value();
  }
}

template <typename J>
Value convert_top(const J& j, const std::string& field, int max_depth) {
  try {
    return convert(j, 1, max_depth);
  } catch (TooDeep& e) {
    // The field named is the variable down to its first key within two levels
    // ("messages[0].meta"); the message shows the path's first eight levels.
    std::string named = printable_key(field), shown = named;
    const size_t n = e.segments.size();
    for (size_t k = 0; k < 2 && k < n; ++k)
      if (e.segments[n - 1 - k][0] == '.') {
        for (size_t m = 0; m <= k; ++m) named += e.segments[n - 1 - m];
        break;
      }
    for (size_t k = 0; k < 8 && k < e.segments.size(); ++k) shown += e.segments[e.segments.size() - 1 - k];
    if (e.segments.size() > 8) shown += "...";
    throw ChatTemplateError(
        fmt::format("chat template input: '{}' is nested deeper than {} levels", shown, max_depth), named);
  }
}

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j, const std::string& field, int max_depth) {
  return convert_top(j, field, max_depth);
}
Value Value::from_json(const nlohmann::json& j, const std::string& field, int max_depth) {
  return convert_top(j, field, max_depth);
}

namespace {

// Moves the lists/dicts that `v` solely owns into `stack`, so that freeing `v`
// afterwards frees only leaves and shared containers (one level, no recursion).
void take_owned_children(Value& v, std::vector<Value>& stack) {
  auto take = [&](Value& c) {
    if ((c.arr && c.arr.use_count() == 1) || (c.obj && c.obj.use_count() == 1)) stack.push_back(std::move(c));
  };
  if (v.arr && v.arr.use_count() == 1)
    for (auto& c : *v.arr) take(c);
  if (v.obj && v.obj.use_count() == 1)
    for (auto& kv : *v.obj) take(kv.second);
}

}  // namespace

Value::~Value() {
  if (!(arr && arr.use_count() == 1) && !(obj && obj.use_count() == 1)) return;
  thread_local bool draining = false;
  thread_local std::vector<Value> stack;
  take_owned_children(*this, stack);
  if (draining) return;  // an outer ~Value is draining the stack
  draining = true;
  while (!stack.empty()) {
    Value v = std::move(stack.back());
    stack.pop_back();
    take_owned_children(v, stack);
  }  // each v dies here with only leaves left below it
  draining = false;
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

std::string Value::to_string(size_t max_len) const {
  switch (kind) {
    case Undefined: return "";
    case None: return "None";
    case Bool: return b ? "True" : "False";
    case Int: return std::to_string(i);
    case Float: return float_str(f);
    case String: return s;
    case List: case Dict: return to_json(-1, max_len);
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

namespace {

struct JsonWriter {
  int indent;
  size_t max_len;
  std::string out;

  void check(int depth) const {
    if (depth > kMaxValueDepth)
      throw ChatTemplateError(fmt::format("chat template: value nested deeper than {} levels (or containing itself) "
                                          "cannot be printed or serialised", kMaxValueDepth));
    if (out.size() > max_len)
      throw ChatTemplateError(fmt::format("chat template: printed or serialised value exceeds {} bytes", max_len));
  }
  void newline(int depth) {
    if (indent < 0) return;
    out.push_back('\n');
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
  }
  void write(const Value& v, int depth) {
    check(depth);
    const char* item_sep = indent >= 0 ? "," : ", ";
    switch (v.kind) {
      case Value::Undefined: case Value::None: out += "null"; return;
      case Value::Bool: out += v.b ? "true" : "false"; return;
      case Value::Int: out += std::to_string(v.i); return;
      case Value::Float:
        out += std::isfinite(v.f) && v.f == std::floor(v.f) && std::fabs(v.f) < 1e16 ? fmt::format("{:.0f}", v.f)
                                                                                  : fmt::format("{}", v.f);
        return;
      case Value::String: json_string(v.s, out); return;
      case Value::List:
        if (v.arr->empty()) { out += "[]"; return; }
        out += '[';
        for (size_t k = 0; k < v.arr->size(); ++k) {
          if (k) out += item_sep;
          newline(depth + 1);
          write((*v.arr)[k], depth + 1);
        }
        newline(depth);
        out += ']';
        return;
      case Value::Dict: {
        if (v.obj->empty()) { out += "{}"; return; }
        out += '{';
        bool first = true;
        for (const auto& [k, x] : *v.obj) {
          if (!first) out += item_sep;
          first = false;
          newline(depth + 1);
          json_string(k, out);
          out += ": ";
          write(x, depth + 1);
        }
        newline(depth);
        out += '}';
        return;
      }
      case Value::Func: throw ChatTemplateError("chat template: cannot convert a function to JSON");
    }
  }
};

}  // namespace

std::string Value::to_json(int indent, size_t max_len) const {
  if (indent > 64) throw ChatTemplateError(fmt::format("chat template: tojson indent {} is larger than 64", indent));
  JsonWriter w{indent, max_len, {}};
  w.write(*this, 0);
  w.check(0);
  return std::move(w.out);
}

std::string Value::type_name() const {
  static const char* names[] = {"undefined", "none", "boolean", "integer", "float", "string", "list", "dict", "function"};
  return is_namespace ? "namespace" : names[kind];
}

static void check_value_depth(int depth) {
  if (depth > kMaxValueDepth)
    throw ChatTemplateError(fmt::format("chat template: value nested deeper than {} levels (or containing itself) "
                                        "cannot be compared or searched", kMaxValueDepth));
}

static bool equal_at(const Value& a, const Value& b, int depth) {
  check_value_depth(depth);
  if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
  if (a.kind == Value::Bool && b.is_number()) return (a.b ? 1.0 : 0.0) == b.as_double();
  if (b.kind == Value::Bool && a.is_number()) return (b.b ? 1.0 : 0.0) == a.as_double();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Undefined: case Value::None: return true;
    case Value::Bool: return a.b == b.b;
    case Value::String: return a.s == b.s;
    case Value::List:
      if (a.arr == b.arr) return true;
      if (a.arr->size() != b.arr->size()) return false;
      for (size_t k = 0; k < a.arr->size(); ++k)
        if (!equal_at((*a.arr)[k], (*b.arr)[k], depth + 1)) return false;
      return true;
    case Value::Dict:
      if (a.obj == b.obj) return true;
      if (a.obj->size() != b.obj->size()) return false;
      for (const auto& [k, v] : *a.obj) {
        const Value* o = b.get(k);
        if (!o || !equal_at(v, *o, depth + 1)) return false;
      }
      return true;
    default: return a.fn == b.fn;
  }
}

bool values_equal(const Value& a, const Value& b) { return equal_at(a, b, 0); }

static bool contains_at(const Value& v, const void* target, int64_t* visited, int depth) {
  check_value_depth(depth);
  ++*visited;
  if (v.kind == Value::List) {
    if (v.arr.get() == target) return true;
    for (const auto& x : *v.arr)
      if ((x.kind == Value::List || x.kind == Value::Dict) && contains_at(x, target, visited, depth + 1)) return true;
  } else if (v.kind == Value::Dict) {
    if (v.obj.get() == target) return true;
    for (const auto& [k, x] : *v.obj)
      if ((x.kind == Value::List || x.kind == Value::Dict) && contains_at(x, target, visited, depth + 1)) return true;
  }
  return false;
}

bool contains_storage(const Value& v, const void* target, int64_t* visited) {
  return contains_at(v, target, visited, 0);
}

}  // namespace moe::jinja
