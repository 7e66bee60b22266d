// Internal interface between the Jinja evaluator (jinja_eval.cpp) and the
// builtin filters, tests, methods and globals (jinja_builtins.cpp).
#pragma once
#include <string>

#include "tokenizer/jinja.h"

namespace moe::jinja {

struct ErrorCtx {
  const std::string& src;
  [[noreturn]] void fail(const std::string& what, size_t pos) const;
};

Value apply_filter(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos);
bool apply_test(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos);
// Method call obj.name(args) for strings, lists and dicts; sets *found=false if unknown.
Value call_method(const Value& obj, const std::string& name, const Args& a, const ErrorCtx& ec, size_t pos, bool* found);
void add_globals(Value& globals);

}  // namespace moe::jinja
