// Bounded JSON reading and checked member access (see json_access.h). The
// depth and value-count limits are checked by one linear pre-scan of the text
// (string-aware: brackets inside strings do not count) before nlohmann parses,
// so a hostile file is rejected before any DOM is built and the error can give
// the byte offset.
#include "tokenizer/json_access.h"

#include <fstream>
#include <limits>

#include "tokenizer/limits.h"
#include "tokenizer/utf8.h"

namespace moe::tok {

using nlohmann::json;

std::string read_file_bounded(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw_error("{}: cannot open file", path);
  const std::streamoff size = f.tellg();
  if (size < 0) throw_error("{}: cannot read file", path);
  if (static_cast<uint64_t>(size) > max_bytes)
    throw_error("{}: file is {} bytes, over the limit of {} bytes", path, size, max_bytes);
  std::string s(static_cast<size_t>(size), '\0');
  f.seekg(0);
  if (!f.read(s.data(), size)) throw_error("{}: cannot read file", path);
  return s;
}

json parse_json_bounded(std::string_view text, const std::string& name) {
  if (text.size() > kMaxJsonFileBytes)
    throw_error("{}: {} bytes of JSON, over the limit of {} bytes", name, text.size(), kMaxJsonFileBytes);
  int depth = 0;
  size_t values = 1;  // >= 1 + containers + commas >= the number of values
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > kMaxJsonDepth)
          throw_error("{}: offset {}: JSON nested deeper than the limit of {} levels", name, i, kMaxJsonDepth);
        ++values;
        break;
      case ']':
      case '}': --depth; break;
      case ',': ++values; break;
      default: break;
    }
    if (values > kMaxJsonValues)
      throw_error("{}: offset {}: more than the limit of {} JSON values", name, i, kMaxJsonValues);
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw_error("{}: invalid JSON: {}", name, quote(e.what(), 200));
  }
}

const char* json_kind(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a fractional number";
    default: return "an unsupported value";
  }
}

void JNode::type_error(const char* expected) const { fail("expected {}, found {}", expected, json_kind(*j_)); }

void JNode::expect_object() const {
  if (!j_->is_object()) type_error("an object");
}
void JNode::expect_array() const {
  if (!j_->is_array()) type_error("an array");
}

static std::string child_path(const std::string& parent, const char* key) {
  return parent.empty() ? std::string(key) : parent + "." + key;
}

JNode JNode::at(const char* key) const {
  expect_object();
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) fail("missing required key '{}'", key);
  return JNode(*it, *file_, child_path(path_, key));
}

std::optional<JNode> JNode::opt(const char* key) const {
  expect_object();
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return std::nullopt;
  return JNode(*it, *file_, child_path(path_, key));
}

JNode JNode::at(size_t i) const {
  expect_array();
  if (i >= j_->size()) fail("has {} elements, index {} is out of range", j_->size(), i);
  return JNode((*j_)[i], *file_, path_ + "[" + std::to_string(i) + "]");
}

size_t JNode::array_size() const {
  expect_array();
  return j_->size();
}

const std::string& JNode::str() const {
  if (!j_->is_string()) type_error("a string");
  return j_->get_ref<const std::string&>();
}

int64_t JNode::integer() const {
  if (j_->is_number_unsigned()) {
    const auto u = j_->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail("integer {} is too large", u);
    return static_cast<int64_t>(u);
  }
  if (j_->is_number_integer()) return j_->get<int64_t>();
  type_error("an integer");
}

bool JNode::boolean() const {
  if (!j_->is_boolean()) type_error("a bool");
  return j_->get<bool>();
}

std::string JNode::str_or(const char* key, const std::string& def) const {
  auto n = opt(key);
  return n ? n->str() : def;
}
bool JNode::bool_or(const char* key, bool def) const {
  auto n = opt(key);
  return n ? n->boolean() : def;
}
int64_t JNode::int_or(const char* key, int64_t def) const {
  auto n = opt(key);
  return n ? n->integer() : def;
}

}  // namespace moe::tok
