// A Jinja subset for chat templates: values, the token stream, the AST, and the
// entry points. Lexing (jinja_lexer.cpp) follows Jinja with trim_blocks and
// lstrip_blocks on, as transformers renders chat templates; parsing is
// jinja_parser.cpp; evaluation and builtins are jinja_eval.cpp/jinja_builtins.cpp.
// Values have Python-like semantics; lists, dicts and namespaces are shared by
// reference (so `set ns.x = ...` mutates the namespace seen by every scope).
// Templates come from model files and their inputs from clients, so every
// recursion and every size is bounded (Limits, kMaxParseDepth, kMaxValueDepth):
// exceeding a bound throws, it never crashes or runs unbounded.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_error.h"

namespace moe::jinja {

// Nesting of the parsed template: parser recursion (parentheses, nested blocks)
// and the depth of the syntax tree (long operator or filter chains).
inline constexpr int kMaxParseDepth = 256;
// Nesting of values printed, serialised (tojson), compared or searched for
// reference cycles. Deeper values (or a list that contains itself) are an error.
inline constexpr int kMaxValueDepth = 256;

// Stack the evaluator may use below render()'s frame. Frame sizes differ by
// build (sanitizer frames are several times larger), so besides counting depth
// the evaluator measures its stack; a server thread has 8 MiB.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr size_t kDefaultStackBytes = size_t{6} << 20;
#else
inline constexpr size_t kDefaultStackBytes = size_t{2} << 20;
#endif

// Resource limits of one render. Defaults are far above what real chat
// templates need and far below what exhausts a server: Qwen3's template takes
// ~71 steps per message (DeepSeek-V3 ~50, Llama-3 ~24), so 20M steps render
// ~280k messages (the server accepts at most 100k); 20M steps take ~2-4 s and
// 1M empty loop iterations ~1 s on one core of the 2-core CI VM.
struct Limits {
  int max_input_depth = 128;                     // JSON nesting of messages and extra variables
  int max_eval_depth = 1024;                     // nested evaluation frames (expressions, blocks, macro calls)
  int max_macro_depth = 128;                     // nested macro calls (recursion)
  size_t max_stack_bytes = kDefaultStackBytes;   // stack used by nested evaluation
  int64_t max_steps = 20'000'000;                // nodes evaluated + per-element work of builtins
  int64_t max_loop_iterations = 1'000'000;       // for-loop iterations, all loops together
  size_t max_output = size_t{16} << 20;          // bytes of output, and of any one string value
  size_t max_list = 1'000'000;                   // elements of one list built by the template
  int64_t max_bytes = int64_t{1} << 30;          // cumulative bytes of strings and lists the template builds
};

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

  Value() = default;
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  // Frees nested lists/dicts with an explicit stack: a template can build a list
  // nested a million deep (`set x = [x]` in a loop), and freeing it by recursion
  // would overflow the stack.
  ~Value();

  static Value none() { Value v; v.kind = None; return v; }
  static Value boolean(bool x) { Value v; v.kind = Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Float; v.f = x; return v; }
  static Value str(std::string x) { Value v; v.kind = String; v.s = std::move(x); return v; }
  static Value list(Array a = {}) { Value v; v.kind = List; v.arr = std::make_shared<Array>(std::move(a)); return v; }
  static Value dict(Object o = {}) { Value v; v.kind = Dict; v.obj = std::make_shared<Object>(std::move(o)); return v; }
  // Throws ChatTemplateError naming `field` (and the path below it) when `j` nests
  // deeper than max_depth. Integers beyond int64 become floats (as in JavaScript).
  static Value from_json(const nlohmann::ordered_json& j, const std::string& field = "value",
                         int max_depth = Limits{}.max_input_depth);
  static Value from_json(const nlohmann::json& j, const std::string& field = "value",
                         int max_depth = Limits{}.max_input_depth);

  bool truthy() const;
  bool is_number() const { return kind == Int || kind == Float; }
  double as_double() const { return kind == Int ? static_cast<double>(i) : kind == Float ? f : b ? 1.0 : 0.0; }
  const Value* get(const std::string& key) const;  // dict lookup; nullptr if absent
  void set(const std::string& key, Value v);
  // What {{ v }} prints / tojson. Both throw ChatTemplateError past
  // kMaxValueDepth levels (a self-containing list included) or max_len bytes.
  std::string to_string(size_t max_len = Limits{}.max_output) const;
  std::string to_json(int indent = -1, size_t max_len = Limits{}.max_output) const;
  std::string type_name() const;
};

// Python ==. Throws ChatTemplateError past kMaxValueDepth levels.
bool values_equal(const Value& a, const Value& b);
// Whether `v` is, or contains at any depth, the list/dict storage `target`
// (used to refuse reference cycles). Adds the values visited to *visited;
// throws ChatTemplateError past kMaxValueDepth levels.
bool contains_storage(const Value& v, const void* target, int64_t* visited);

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
  int depth = 1;                     // height of this subtree (bounded by kMaxParseDepth)
};

// Parses the whole template; throws moe::Error "chat template: ... at L:C".
NodePtr parse(const std::string& src, std::string& preprocessed);
// Renders a parsed template. Every error it throws is a ChatTemplateError
// "chat template: ... at L:C" (the construct and its position).
std::string render(const Node& program, const std::string& preprocessed, Value context_vars,
                   const Limits& limits = {});

// Position helper for error messages: "line L, column C".
std::string where(const std::string& src, size_t pos);

}  // namespace moe::jinja
