// A Jinja subset for chat templates: values, the token stream, the AST, and the
// entry points. Lexing (jinja_lexer.cpp) follows Jinja with trim_blocks and
// lstrip_blocks on, as transformers renders chat templates; parsing is
// jinja_parser.cpp; evaluation and builtins are jinja_eval.cpp/jinja_builtins.cpp.
// Values have Python-like semantics; lists, dicts and namespaces are shared by
// reference (so `set ns.x = ...` mutates the namespace seen by every scope).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace moe::jinja {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion order, like Python dicts
struct Callable;

struct Value {
  enum Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Func };
  Kind kind = Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<Array> arr;
  std::shared_ptr<Object> obj;
  std::shared_ptr<Callable> fn;
  bool is_namespace = false;

  static Value none() { Value v; v.kind = None; return v; }
  static Value boolean(bool x) { Value v; v.kind = Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Float; v.f = x; return v; }
  static Value str(std::string x) { Value v; v.kind = String; v.s = std::move(x); return v; }
  static Value list(Array a = {}) { Value v; v.kind = List; v.arr = std::make_shared<Array>(std::move(a)); return v; }
  static Value dict(Object o = {}) { Value v; v.kind = Dict; v.obj = std::make_shared<Object>(std::move(o)); return v; }
  static Value from_json(const nlohmann::ordered_json& j);

  bool truthy() const;
  bool is_number() const { return kind == Int || kind == Float; }
  double as_double() const { return kind == Int ? static_cast<double>(i) : kind == Float ? f : b ? 1.0 : 0.0; }
  const Value* get(const std::string& key) const;  // dict lookup; nullptr if absent
  void set(const std::string& key, Value v);
  std::string to_string() const;  // what {{ v }} prints
  std::string to_json(int indent = -1, int depth = 0) const;
  std::string type_name() const;
};

bool values_equal(const Value& a, const Value& b);

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* kwarg(const std::string& k) const {
    for (const auto& [n, v] : kw)
      if (n == k) return &v;
    return nullptr;
  }
  // Positional i, else keyword k, else nullptr.
  const Value* at(size_t i, const std::string& k) const { return i < pos.size() ? &pos[i] : kwarg(k); }
};

struct Callable {
  std::function<Value(const Args&)> call;
};

enum class Tok {
  Text, OpenExpr, CloseExpr, OpenStmt, CloseStmt, Name, String, Int, Float, Op, End
};
struct Token {
  Tok type;
  std::string text;
  size_t pos;  // byte offset in the preprocessed source
};
std::vector<Token> lex(const std::string& src, std::string& preprocessed);

struct Node;
using NodePtr = std::shared_ptr<Node>;
struct Node {
  enum Kind {
    // expressions
    Literal, Name, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, Ternary, ListLit, DictLit,
    // statements
    Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Block
  } kind;
  size_t pos = 0;
  std::string s;                     // name, operator, filter/test name, text
  Value lit;                         // Literal
  std::vector<NodePtr> c;            // operands / arguments / body statements
  std::vector<std::string> names;    // keyword names (Call/Filter), loop targets, macro params
  std::vector<NodePtr> extra;        // If: else-branch; For: else body; Macro: param defaults
  bool negate = false;               // Test
};

// Parses the whole template; throws moe::Error "chat template: ... at L:C".
NodePtr parse(const std::string& src, std::string& preprocessed);
std::string render(const Node& program, const std::string& preprocessed, Value context_vars);

// Position helper for error messages: "line L, column C".
std::string where(const std::string& src, size_t pos);

}  // namespace moe::jinja
