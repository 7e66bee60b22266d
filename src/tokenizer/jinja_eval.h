// Internal interface between the Jinja evaluator (jinja_eval.cpp) and the
// builtin filters, tests, methods and globals (jinja_builtins.cpp): the error
// context, which also carries the render's Limits and the Budget spent so far.
// Every check that fails throws ChatTemplateError naming the construct's line.
#pragma once
#include <cstddef>
#include <string>

#include "tokenizer/jinja.h"

namespace moe::jinja {

// What one render has spent; checked against Limits as it grows.
struct Budget {
  int64_t steps = 0;
  int64_t loop_iterations = 0;
  int64_t bytes = 0;
  int depth = 0;        // evaluation frames now on the stack (eval, exec, builtin recursion)
  int macro_depth = 0;  // macro calls now on the stack
  const char* stack_base = nullptr;  // render()'s frame: stack use is measured from here
};

struct ErrorCtx {
  const std::string& src;
  const Limits& lim;
  Budget& spent;
  [[noreturn]] void fail(const std::string& what, size_t pos) const;
  void step(int64_t n, size_t pos) const;                // n units of work
  void charge_bytes(size_t n, size_t pos) const;         // n bytes built (cumulative)
  void check_string(size_t n, const char* what, size_t pos) const;  // one string of n bytes
  Value make_list(Array a, const char* what, size_t pos) const;   // checks max_list, charges
  Value make_str(std::string s, const char* what, size_t pos) const;  // checks max_output, charges
};

// Holds one evaluation frame for as long as it lives; throws past max_eval_depth.
class DepthGuard {
 public:
  DepthGuard(const ErrorCtx& ec, size_t pos) : spent_(ec.spent) {
    if (++spent_.depth > ec.lim.max_eval_depth) {
      --spent_.depth;
      ec.fail(fmt::format("evaluation nested deeper than {} levels", ec.lim.max_eval_depth), pos);
    }
    const char* here = static_cast<const char*>(__builtin_frame_address(0));
    if (spent_.stack_base && spent_.stack_base - here > static_cast<std::ptrdiff_t>(ec.lim.max_stack_bytes)) {
      --spent_.depth;
      ec.fail(fmt::format("evaluation nested deeper than its stack budget of {} bytes", ec.lim.max_stack_bytes), pos);
    }
  }
  ~DepthGuard() { --spent_.depth; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  Budget& spent_;
};

Value apply_filter(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos);
bool apply_test(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos);
// Method call obj.name(args) for strings, lists and dicts; sets *found=false if unknown.
Value call_method(const Value& obj, const std::string& name, const Args& a, const ErrorCtx& ec, size_t pos, bool* found);
void add_globals(Value& globals, const ErrorCtx& ec);

}  // namespace moe::jinja
