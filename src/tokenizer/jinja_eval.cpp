// Tree-walking evaluator for the Jinja subset. Scopes: the template's globals,
// one child scope per for-loop (as Jinja: assignments inside a loop do not leak
// out) and per macro call. Lists, dicts and namespaces are shared references.
// Every eval/exec holds a DepthGuard and spends a step; loops, output, strings
// and lists are checked against the render's Limits; integer arithmetic checks
// overflow; mutations that would make a list or dict contain itself are refused.
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_eval.h"

namespace moe::jinja {

void ErrorCtx::fail(const std::string& what, size_t pos) const {
  throw ChatTemplateError(fmt::format("chat template: {} at {}", what, where(src, pos)));
}

void ErrorCtx::step(int64_t n, size_t pos) const {
  spent.steps += n;
  if (spent.steps > lim.max_steps) fail(fmt::format("evaluation exceeds {} steps", lim.max_steps), pos);
}

void ErrorCtx::charge_bytes(size_t n, size_t pos) const {
  spent.bytes += static_cast<int64_t>(std::min<size_t>(n, INT64_MAX / 4));
  if (spent.bytes > lim.max_bytes) fail(fmt::format("the template builds more than {} bytes of values", lim.max_bytes), pos);
}

void ErrorCtx::check_string(size_t n, const char* what, size_t pos) const {
  if (n > lim.max_output) fail(fmt::format("{} would be {} bytes, more than the limit of {}", what, n, lim.max_output), pos);
}

Value ErrorCtx::make_list(Array a, const char* what, size_t pos) const {
  if (a.size() > lim.max_list) fail(fmt::format("{} has {} elements, more than the limit of {}", what, a.size(), lim.max_list), pos);
  step(static_cast<int64_t>(a.size()), pos);
  charge_bytes(a.size() * sizeof(Value), pos);
  return Value::list(std::move(a));
}

Value ErrorCtx::make_str(std::string s, const char* what, size_t pos) const {
  check_string(s.size(), what, pos);
  charge_bytes(s.size(), pos);
  return Value::str(std::move(s));
}

namespace {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* find(const std::string& k) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(k);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

class Evaluator {
 public:
  Evaluator(const std::string& src, const Limits& lim) : lim_(lim), ec_{src, lim_, spent_} {}

  enum class Flow { Normal, Break, Continue };

  const ErrorCtx& ctx() const { return ec_; }
  void set_stack_base(const void* p) { spent_.stack_base = static_cast<const char*>(p); }

  void emit(std::string& out, const std::string& piece, size_t pos) {
    if (out.size() + piece.size() > lim_.max_output)
      ec_.fail(fmt::format("output exceeds {} bytes", lim_.max_output), pos);
    out += piece;
  }

  Flow exec(const Node& n, const ScopePtr& sc, std::string& out) {
    DepthGuard g(ec_, n.pos);
    ec_.step(1, n.pos);
    switch (n.kind) {
      case Node::Block:
        for (const auto& c : n.c) {
          Flow f = exec(*c, sc, out);
          if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
      case Node::Text: emit(out, n.s, n.pos); return Flow::Normal;
      case Node::Output: emit(out, eval(*n.c[0], sc).to_string(lim_.max_output), n.pos); return Flow::Normal;
      case Node::If:
        if (eval(*n.c[0], sc).truthy()) return exec(*n.c[1], sc, out);
        if (!n.extra.empty()) return exec(*n.extra[0], sc, out);
        return Flow::Normal;
      case Node::For: return exec_for(n, sc, out);
      case Node::Set: {
        Value v = eval(*n.c[1], sc);
        const Node& t = *n.c[0];
        if (!n.names.empty()) {
          if (v.kind != Value::List || v.arr->size() != n.names.size())
            ec_.fail(fmt::format("cannot unpack {} into {} names", v.type_name(), n.names.size()), n.pos);
          for (size_t k = 0; k < n.names.size(); ++k) sc->vars[n.names[k]] = (*v.arr)[k];
        } else if (t.kind == Node::Name) {
          sc->vars[t.s] = std::move(v);
        } else {
          Value obj = eval(*t.c[0], sc);
          if (obj.kind != Value::Dict) ec_.fail(fmt::format("cannot set attribute '{}' on {}", t.s, obj.type_name()), n.pos);
          refuse_cycle(v, obj.obj.get(), n.pos);
          obj.set(t.s, std::move(v));
        }
        return Flow::Normal;
      }
      case Node::SetBlock: {
        std::string body;
        exec(*n.c[1], sc, body);
        ec_.charge_bytes(body.size(), n.pos);
        sc->vars[n.c[0]->s] = Value::str(std::move(body));
        return Flow::Normal;
      }
      case Node::Macro: {
        Value fn;
        fn.kind = Value::Func;
        fn.fn = std::make_shared<Callable>();
        const Node* def = &n;
        // The scope holds the macro and the macro needs the scope: the closure
        // keeps a plain pointer and the evaluator keeps the scope alive until
        // the render ends (a shared_ptr here would be a cycle, leaked).
        if (macro_scopes_.empty() || macro_scopes_.back() != sc) macro_scopes_.push_back(sc);
        Scope* defscope = sc.get();
        fn.fn->call = [this, def, defscope](const Args& a) {
          if (++spent_.macro_depth > lim_.max_macro_depth) {
            --spent_.macro_depth;
            ec_.fail(fmt::format("macro '{}' calls nested deeper than {} levels", def->s, lim_.max_macro_depth), def->pos);
          }
          struct Exit {
            Budget& b;
            ~Exit() { --b.macro_depth; }
          } exit{spent_};
          auto ms = std::make_shared<Scope>();
          ms->parent = std::shared_ptr<Scope>(std::shared_ptr<Scope>(), defscope);  // non-owning
          for (size_t k = 0; k < def->names.size(); ++k) {
            const Value* v = a.at(k, def->names[k]);
            if (v) ms->vars[def->names[k]] = *v;
            else if (def->extra[k]) ms->vars[def->names[k]] = eval(*def->extra[k], ms);
            else ms->vars[def->names[k]] = Value();
          }
          std::string body;
          exec(*def->c[0], ms, body);
          ec_.charge_bytes(body.size(), def->pos);
          return Value::str(std::move(body));
        };
        sc->vars[n.s] = fn;
        return Flow::Normal;
      }
      case Node::Break: return Flow::Break;
      case Node::Continue: return Flow::Continue;
      default: ec_.fail("internal: expression used as statement", n.pos);
    }
  }

  Flow exec_for(const Node& n, const ScopePtr& sc, std::string& out) {
    Value it = eval(*n.c[0], sc);
    // A list is iterated in place, over the length it had at the start (lists
    // only grow: append is the one mutation, so every index stays valid).
    std::shared_ptr<Array> src;
    Array items;
    if (it.kind == Value::List) {
      src = it.arr;
    } else if (it.kind == Value::Dict) {
      for (const auto& [k, v] : *it.obj) items.push_back(Value::str(k));
      it = ec_.make_list(std::move(items), "the loop's keys", n.pos);
      src = it.arr;
    } else if (it.kind == Value::String) {
      if (it.s.size() > lim_.max_list)
        ec_.fail(fmt::format("loop over a string of {} bytes, more than the limit of {}", it.s.size(), lim_.max_list), n.pos);
      ec_.step(static_cast<int64_t>(it.s.size()), n.pos);
      ec_.charge_bytes(it.s.size() * sizeof(Value), n.pos);
      for (size_t k = 0; k < it.s.size();) {
        size_t len = 1;
        auto c = static_cast<unsigned char>(it.s[k]);
        if (c >= 0xF0) len = 4; else if (c >= 0xE0) len = 3; else if (c >= 0xC0) len = 2;
        items.push_back(Value::str(it.s.substr(k, len)));
        k += len;
      }
    } else if (it.kind != Value::Undefined && it.kind != Value::None) {
      ec_.fail(fmt::format("cannot iterate over {}", it.type_name()), n.pos);
    }
    if (!src) src = std::make_shared<Array>(std::move(items));
    auto ls = std::make_shared<Scope>();
    ls->parent = sc;
    // The optional `if` filter applies before loop.* is computed.
    if (n.c[1]) {
      Array kept;
      const size_t n_all = src->size();
      for (size_t k = 0; k < n_all; ++k) {
        count_iteration(n.pos);
        bind_targets(n, (*src)[k], *ls);
        if (eval(*n.c[1], ls).truthy()) kept.push_back((*src)[k]);
      }
      src = std::make_shared<Array>(std::move(kept));
    }
    const Array& elems = *src;
    if (elems.empty()) {
      if (!n.extra.empty()) return exec(*n.extra[0], sc, out);
      return Flow::Normal;
    }
    const size_t len = elems.size();
    for (size_t k = 0; k < len; ++k) {
      count_iteration(n.pos);
      bind_targets(n, elems[k], *ls);
      auto num = [](size_t x) { return Value::integer(static_cast<int64_t>(x)); };
      Object loop;
      loop.reserve(9);
      loop.emplace_back("index", num(k + 1));
      loop.emplace_back("index0", num(k));
      loop.emplace_back("revindex", num(len - k));
      loop.emplace_back("revindex0", num(len - k - 1));
      loop.emplace_back("first", Value::boolean(k == 0));
      loop.emplace_back("last", Value::boolean(k + 1 == len));
      loop.emplace_back("length", num(len));
      loop.emplace_back("previtem", k > 0 ? elems[k - 1] : Value());
      loop.emplace_back("nextitem", k + 1 < len ? elems[k + 1] : Value());
      ls->vars["loop"] = Value::dict(std::move(loop));
      Flow f = exec(*n.c[2], ls, out);
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  void count_iteration(size_t pos) {
    if (++spent_.loop_iterations > lim_.max_loop_iterations)
      ec_.fail(fmt::format("for-loops run more than {} iterations in all", lim_.max_loop_iterations), pos);
  }

  // A list or dict that contained itself would print forever and leak (its
  // shared storage would own itself): refuse the mutation instead.
  void refuse_cycle(const Value& v, const void* target, size_t pos) {
    if (v.kind != Value::List && v.kind != Value::Dict) return;
    int64_t visited = 0;
    const bool cycle = contains_storage(v, target, &visited);
    ec_.step(visited, pos);
    if (cycle) ec_.fail("a list or dict cannot contain itself", pos);
  }

  void bind_targets(const Node& n, const Value& v, Scope& ls) {
    if (n.names.size() == 1) { ls.vars[n.names[0]] = v; return; }
    if (v.kind != Value::List || v.arr->size() != n.names.size())
      ec_.fail(fmt::format("cannot unpack {} into {} loop variables", v.type_name(), n.names.size()), n.pos);
    for (size_t k = 0; k < n.names.size(); ++k) ls.vars[n.names[k]] = (*v.arr)[k];
  }

  Args eval_args(const Node& n, size_t first, const ScopePtr& sc) {
    Args a;
    for (size_t k = first; k < n.c.size(); ++k) a.pos.push_back(eval(*n.c[k], sc));
    for (size_t k = 0; k < n.names.size(); ++k) a.kw.emplace_back(n.names[k], eval(*n.extra[k], sc));
    return a;
  }

  static int64_t norm_index(int64_t i, size_t size) { return i < 0 ? i + static_cast<int64_t>(size) : i; }

  Value eval(const Node& n, const ScopePtr& sc) {
    DepthGuard g(ec_, n.pos);
    ec_.step(1, n.pos);
    Value v = eval_node(n, sc);
    if (v.kind == Value::String) ec_.charge_bytes(v.s.size(), n.pos);
    return v;
  }

  Value eval_node(const Node& n, const ScopePtr& sc) {
    switch (n.kind) {
      case Node::Literal: return n.lit;
      case Node::Name: {
        const Value* v = sc->find(n.s);
        return v ? *v : Value();
      }
      case Node::Attr: {
        Value o = eval(*n.c[0], sc);
        if (o.kind == Value::Dict) {
          const Value* v = o.get(n.s);
          return v ? *v : Value();
        }
        if (o.kind == Value::List && !n.s.empty() && std::isdigit(static_cast<unsigned char>(n.s[0]))) {
          size_t i = 0;
          auto [end, ec] = std::from_chars(n.s.data(), n.s.data() + n.s.size(), i);
          if (ec != std::errc() || end != n.s.data() + n.s.size() || i >= o.arr->size()) return Value();
          return (*o.arr)[i];
        }
        return Value();
      }
      case Node::Index: {
        Value o = eval(*n.c[0], sc);
        Value k = eval(*n.c[1], sc);
        if (o.kind == Value::Dict) {
          if (k.kind != Value::String) return Value();
          const Value* v = o.get(k.s);
          return v ? *v : Value();
        }
        if ((o.kind == Value::List || o.kind == Value::String) && k.kind == Value::Int) {
          size_t size = o.kind == Value::List ? o.arr->size() : o.s.size();
          int64_t i = norm_index(k.i, size);
          if (i < 0 || i >= static_cast<int64_t>(size)) return Value();
          return o.kind == Value::List ? (*o.arr)[static_cast<size_t>(i)] : Value::str(o.s.substr(static_cast<size_t>(i), 1));
        }
        if (o.kind == Value::Undefined || o.kind == Value::None) return Value();
        ec_.fail(fmt::format("cannot index {} with {}", o.type_name(), k.type_name()), n.pos);
      }
      case Node::Slice: return eval_slice(n, sc);
      case Node::Call: {
        const Node& callee = *n.c[0];
        Args a = eval_args(n, 1, sc);
        if (callee.kind == Node::Attr) {
          Value o = eval(*callee.c[0], sc);
          if (o.kind == Value::Dict) {
            const Value* f = o.get(callee.s);
            if (f && f->kind == Value::Func) return f->fn->call(a);
          }
          if (o.kind == Value::List && callee.s == "append" && !a.pos.empty()) {
            if (o.arr->size() >= lim_.max_list)
              ec_.fail(fmt::format("list grows past the limit of {} elements", lim_.max_list), n.pos);
            refuse_cycle(a.pos[0], o.arr.get(), n.pos);
          }
          bool found = true;
          Value r = call_method(o, callee.s, a, ec_, n.pos, &found);
          if (found) return r;
          ec_.fail(fmt::format("unsupported method '{}' on {}", callee.s, o.type_name()), n.pos);
        }
        Value f = eval(callee, sc);
        if (f.kind != Value::Func) {
          std::string nm = callee.kind == Node::Name ? "'" + callee.s + "'" : "expression";
          ec_.fail(fmt::format("{} is not callable ({})", nm, f.type_name()), n.pos);
        }
        return f.fn->call(a);
      }
      case Node::Filter: {
        Value v = eval(*n.c[0], sc);
        Args a = eval_args(n, 1, sc);
        return apply_filter(n.s, v, a, ec_, n.pos);
      }
      case Node::Test: {
        Value v = eval(*n.c[0], sc);
        Args a = eval_args(n, 1, sc);
        return Value::boolean(apply_test(n.s, v, a, ec_, n.pos) != n.negate);
      }
      case Node::Unary: {
        Value v = eval(*n.c[0], sc);
        if (n.s == "not") return Value::boolean(!v.truthy());
        if (n.s == "-") {
          if (v.kind == Value::Int) {
            if (v.i == INT64_MIN) ec_.fail("integer overflow in negation", n.pos);
            return Value::integer(-v.i);
          }
          if (v.kind == Value::Float) return Value::number(-v.f);
          ec_.fail(fmt::format("cannot negate {}", v.type_name()), n.pos);
        }
        return v;
      }
      case Node::Binary: return eval_binary(n, sc);
      case Node::Ternary: return eval(*n.c[0], sc).truthy() ? eval(*n.c[1], sc) : eval(*n.c[2], sc);
      case Node::ListLit: {
        Array a;
        for (const auto& c : n.c) a.push_back(eval(*c, sc));
        return ec_.make_list(std::move(a), "list literal", n.pos);
      }
      case Node::DictLit: {
        Value d = Value::dict();
        for (size_t k = 0; k + 1 < n.c.size(); k += 2) {
          Value key = eval(*n.c[k], sc);
          if (key.kind != Value::String) ec_.fail("dict keys must be strings", n.c[k]->pos);
          d.set(key.s, eval(*n.c[k + 1], sc));
        }
        return d;
      }
      default: ec_.fail("internal: statement used as expression", n.pos);
    }
  }

  Value eval_slice(const Node& n, const ScopePtr& sc) {
    Value o = eval(*n.c[0], sc);
    auto opt = [&](const NodePtr& p, bool* has) -> int64_t {
      *has = false;
      if (!p) return 0;
      Value v = eval(*p, sc);
      if (v.kind == Value::None || v.kind == Value::Undefined) return 0;
      if (v.kind != Value::Int) ec_.fail("slice bounds must be integers", p->pos);
      *has = true;
      return v.i;
    };
    bool hs, he, hst;
    int64_t start = opt(n.c[1], &hs), stop = opt(n.c[2], &he), step = opt(n.c[3], &hst);
    if (!hst) step = 1;
    if (step == 0) ec_.fail("slice step cannot be zero", n.pos);
    if (o.kind != Value::List && o.kind != Value::String) {
      if (o.kind == Value::Undefined || o.kind == Value::None) return Value();
      ec_.fail(fmt::format("cannot slice {}", o.type_name()), n.pos);
    }
    int64_t size = static_cast<int64_t>(o.kind == Value::List ? o.arr->size() : o.s.size());
    auto clamp = [&](int64_t v, bool has, int64_t def) {
      if (!has) return def;
      if (v < 0) v += size;
      if (step > 0) return std::clamp<int64_t>(v, 0, size);
      return std::clamp<int64_t>(v, -1, size - 1);
    };
    int64_t b = clamp(start, hs, step > 0 ? 0 : size - 1);
    int64_t e = clamp(stop, he, step > 0 ? size : -1);
    // Indices b, b+step, ... while short of e; written so that no k + step overflows.
    auto more = [&](int64_t k) { return step > 0 ? e - k > step : k - e + step > 0; };
    if (o.kind == Value::List) {
      Array out;
      for (int64_t k = b; step > 0 ? k < e : k > e; k += step) {
        out.push_back((*o.arr)[static_cast<size_t>(k)]);
        if (!more(k)) break;
      }
      return ec_.make_list(std::move(out), "slice", n.pos);
    }
    std::string out;
    for (int64_t k = b; step > 0 ? k < e : k > e; k += step) {
      out += o.s[static_cast<size_t>(k)];
      if (!more(k)) break;
    }
    return Value::str(out);
  }

  Value eval_binary(const Node& n, const ScopePtr& sc) {
    const std::string& op = n.s;
    if (op == "and") {
      Value a = eval(*n.c[0], sc);
      return a.truthy() ? eval(*n.c[1], sc) : a;
    }
    if (op == "or") {
      Value a = eval(*n.c[0], sc);
      return a.truthy() ? a : eval(*n.c[1], sc);
    }
    Value a = eval(*n.c[0], sc), b = eval(*n.c[1], sc);
    if (op == "~") return concat(a, b, n.pos);
    if (op == "==") return Value::boolean(values_equal(a, b));
    if (op == "!=") return Value::boolean(!values_equal(a, b));
    if (op == "in" || op == "not in") {
      bool r = false;
      if (b.kind == Value::String && a.kind == Value::String) r = b.s.find(a.s) != std::string::npos;
      else if (b.kind == Value::List) {
        ec_.step(static_cast<int64_t>(b.arr->size()), n.pos);
        for (const auto& x : *b.arr) r = r || values_equal(a, x);
      }
      else if (b.kind == Value::Dict) r = a.kind == Value::String && b.get(a.s) != nullptr;
      else if (b.kind == Value::Undefined || b.kind == Value::None) r = false;
      else ec_.fail(fmt::format("'in' needs a string, list or dict on the right, got {}", b.type_name()), n.pos);
      return Value::boolean(op == "in" ? r : !r);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (a.is_number() && b.is_number()) c = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
      else if (a.kind == Value::String && b.kind == Value::String) c = a.s.compare(b.s);
      else ec_.fail(fmt::format("cannot compare {} with {}", a.type_name(), b.type_name()), n.pos);
      return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (a.kind == Value::List && b.kind == Value::List) {
        if (a.arr->size() + b.arr->size() > lim_.max_list)
          ec_.fail(fmt::format("list concatenation exceeds {} elements", lim_.max_list), n.pos);
        Array r = *a.arr;
        r.insert(r.end(), b.arr->begin(), b.arr->end());
        return ec_.make_list(std::move(r), "list concatenation", n.pos);
      }
      if (a.kind == Value::String || b.kind == Value::String) return concat(a, b, n.pos);
    }
    if (op == "*" && a.kind == Value::String && b.kind == Value::Int) {
      if (b.i <= 0 || a.s.empty()) return Value::str("");
      if (static_cast<uint64_t>(b.i) > lim_.max_output / a.s.size())
        ec_.fail(fmt::format("string repetition ({} bytes * {}) exceeds {} bytes", a.s.size(), b.i, lim_.max_output), n.pos);
      std::string r;
      r.reserve(a.s.size() * static_cast<size_t>(b.i));
      for (int64_t k = 0; k < b.i; ++k) r += a.s;
      return ec_.make_str(std::move(r), "string repetition", n.pos);
    }
    if (!a.is_number() || !b.is_number())
      ec_.fail(fmt::format("operator '{}' is not supported for {} and {}", op, a.type_name(), b.type_name()), n.pos);
    bool ints = a.kind == Value::Int && b.kind == Value::Int;
    double x = a.as_double(), y = b.as_double();
    if (ints && (op == "+" || op == "-" || op == "*")) {
      int64_t r = 0;
      const bool ovf = op == "+" ? __builtin_add_overflow(a.i, b.i, &r)
                       : op == "-" ? __builtin_sub_overflow(a.i, b.i, &r)
                                   : __builtin_mul_overflow(a.i, b.i, &r);
      if (ovf) ec_.fail(fmt::format("integer overflow in {} {} {}", a.i, op, b.i), n.pos);
      return Value::integer(r);
    }
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (op == "/") {
      if (y == 0) ec_.fail("division by zero", n.pos);
      return Value::number(x / y);
    }
    if (op == "//" || op == "%") {
      if (y == 0) ec_.fail("division by zero", n.pos);
      if (ints) {
        if (b.i == -1) {  // INT64_MIN / -1 overflows
          if (a.i == INT64_MIN && op == "//") ec_.fail("integer overflow in //", n.pos);
          return op == "//" ? Value::integer(-a.i) : Value::integer(0);
        }
        int64_t q = a.i / b.i;
        if ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0))) --q;
        return op == "//" ? Value::integer(q) : Value::integer(a.i - q * b.i);
      }
      double q = std::floor(x / y);
      return op == "//" ? Value::number(q) : Value::number(x - q * y);
    }
    if (op == "**") {
      if (!ints || b.i < 0) return Value::number(std::pow(x, y));
      int64_t r = 1, base = a.i;
      for (int64_t e = b.i; e > 0; e >>= 1) {  // square and multiply, every product checked
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) ec_.fail("integer overflow in **", n.pos);
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) ec_.fail("integer overflow in **", n.pos);
      }
      return Value::integer(r);
    }
    ec_.fail(fmt::format("unsupported operator '{}'", op), n.pos);
  }

  Value concat(const Value& a, const Value& b, size_t pos) {
    std::string l = a.to_string(lim_.max_output), r = b.to_string(lim_.max_output);
    ec_.check_string(l.size() + r.size(), "string concatenation", pos);
    l += r;
    return Value::str(std::move(l));
  }

  const Limits& lim_;
  Budget spent_;
  ErrorCtx ec_;
  std::vector<ScopePtr> macro_scopes_;
};

}  // namespace

std::string render(const Node& program, const std::string& preprocessed, Value vars, const Limits& limits) {
  Evaluator ev(preprocessed, limits);
  ev.set_stack_base(__builtin_frame_address(0));
  auto globals = std::make_shared<Scope>();
  Value g = Value::dict();
  add_globals(g, ev.ctx());
  for (auto& [k, v] : *g.obj) globals->vars[k] = v;
  if (vars.kind == Value::Dict)
    for (auto& [k, v] : *vars.obj) globals->vars[k] = v;
  auto top = std::make_shared<Scope>();
  top->parent = globals;
  std::string out;
  ev.exec(program, top, out);
  return out;
}

}  // namespace moe::jinja
