// Checked access to untrusted JSON (tokenizer.json, tokenizer_config.json) for
// the loaders in load_json.cpp. read_json_file / parse_json_bounded bound the
// file size, the nesting depth and the number of values before nlohmann builds
// the DOM. JNode carries the file name and the JSON path ("model.vocab",
// "added_tokens[3].id") so that every missing key or wrong type becomes one
// line: "FILE: PATH: expected an integer, found string". Nothing here ever uses
// nlohmann's unchecked const operator[].
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "tokenizer/utf8.h"  // quote()

namespace moe::tok {

// Whole file, at most max_bytes (else moe::Error naming the file and the limit).
std::string read_file_bounded(const std::string& path, size_t max_bytes);
// Parses `text` after checking size, depth and value count (limits.h); errors
// name `name` and the byte offset.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& name);

class JNode {
 public:
  JNode(const nlohmann::json& j, const std::string& file, std::string path)
      : j_(&j), file_(&file), path_(std::move(path)) {}

  const nlohmann::json& json() const { return *j_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  bool is_null() const { return j_->is_null(); }

  // Object members. at(): required (missing or null is an error); opt(): nullopt
  // when missing or null. Both require this node to be an object.
  JNode at(const char* key) const;
  std::optional<JNode> opt(const char* key) const;
  // Array elements (this node must be an array; i < size()).
  JNode at(size_t i) const;
  size_t array_size() const;     // requires an array
  void expect_object() const;
  void expect_array() const;

  const std::string& str() const;  // requires a string
  int64_t integer() const;         // requires an integer that fits int64 (no fractions)
  bool boolean() const;            // requires a bool

  // Optional members with a default: missing or null -> def; wrong type -> error.
  std::string str_or(const char* key, const std::string& def) const;
  bool bool_or(const char* key, bool def) const;
  int64_t int_or(const char* key, int64_t def) const;

  // "FILE: PATH: message"
  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) const {
    throw_error("{}: {}: {}", *file_, path_.empty() ? std::string("(top level)") : path_,
                fmt::format(f, std::forward<Args>(args)...));
  }
  [[noreturn]] void type_error(const char* expected) const;

 private:
  const nlohmann::json* j_;
  const std::string* file_;
  std::string path_;
};

// Human name of a JSON value's kind: "string", "integer", "number", "object"...
const char* json_kind(const nlohmann::json& j);

}  // namespace moe::tok
