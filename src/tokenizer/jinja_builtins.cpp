// Builtin filters, tests, methods and globals of the Jinja subset: what the
// chat templates of Qwen3, DeepSeek-V3, gpt-oss, Llama-2/3 and Mixtral use,
// plus the common neighbours. Anything else is a ChatTemplateError naming it.
// Every list or string a builtin builds goes through the ErrorCtx's size checks
// (make_list, make_str, check_string) and charges the render's Budget.
#include <algorithm>
#include <ctime>

#include "base/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_eval.h"

namespace moe::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto in_set = [&](char c) {
    if (!chars || chars->kind == Value::None || chars->kind == Value::Undefined) return is_space(c);
    return chars->s.find(c) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  if (left) while (b < e && in_set(s[b])) ++b;
  if (right) while (e > b && in_set(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count,
                        const ErrorCtx& ec, size_t epos) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (int64_t k = 0; count < 0 || k < count; ++k) {
    size_t at = s.find(from, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += to;
    pos = at + from.size();
    ec.check_string(out.size(), "filter 'replace' result", epos);
  }
  out.append(s, pos, std::string::npos);
  return out;
}

Value split(const std::string& s, const Value* sep, const Value* maxsplit, const ErrorCtx& ec, size_t epos) {
  Array out;
  auto push = [&](std::string part) {
    if (out.size() >= ec.lim.max_list)
      ec.fail(fmt::format("split result exceeds the limit of {} elements", ec.lim.max_list), epos);
    out.push_back(Value::str(std::move(part)));
  };
  int64_t limit = maxsplit && maxsplit->kind == Value::Int ? maxsplit->i : -1;
  if (!sep || sep->kind == Value::None || sep->kind == Value::Undefined) {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (limit >= 0 && static_cast<int64_t>(out.size()) == limit) {
        push(strip(s.substr(i), nullptr, false, true));
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_space(s[j])) ++j;
      push(s.substr(i, j - i));
      i = j;
    }
    return ec.make_list(std::move(out), "split result", epos);
  }
  const std::string d = sep->to_string();
  size_t pos = 0;
  for (;;) {
    size_t at = d.empty() ? std::string::npos : s.find(d, pos);
    if (at == std::string::npos || (limit >= 0 && static_cast<int64_t>(out.size()) == limit)) {
      push(s.substr(pos));
      break;
    }
    push(s.substr(pos, at - pos));
    pos = at + d.size();
  }
  return ec.make_list(std::move(out), "split result", epos);
}

Value attr_of(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const Value* nx = cur.get(part);
    cur = nx ? *nx : Value();
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

int64_t length_of(const Value& v, const ErrorCtx& ec, size_t pos) {
  switch (v.kind) {
    case Value::String: {
      int64_t n = 0;
      for (unsigned char c : v.s) n += (c & 0xC0) != 0x80;
      return n;
    }
    case Value::List: return static_cast<int64_t>(v.arr->size());
    case Value::Dict: return static_cast<int64_t>(v.obj->size());
    case Value::Undefined: return 0;
    default: ec.fail(fmt::format("length of {} is not defined", v.type_name()), pos);
  }
}

Value to_list(const Value& v, const ErrorCtx& ec, size_t pos) {
  if (v.kind == Value::List) return v;
  Array out;
  if (v.kind == Value::Dict) for (const auto& [k, x] : *v.obj) out.push_back(Value::str(k));
  if (v.kind == Value::String) {
    if (v.s.size() > ec.lim.max_list)
      ec.fail(fmt::format("list of the {} characters of a string exceeds the limit of {}", v.s.size(), ec.lim.max_list), pos);
    for (char c : v.s) out.push_back(Value::str(std::string(1, c)));
  }
  return ec.make_list(std::move(out), "list", pos);
}

}  // namespace

Value apply_filter(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos) {
  DepthGuard guard(ec, pos);  // map(filter, ...) recurses
  ec.step(1, pos);
  auto need_string = [&]() -> const std::string& {
    if (v.kind != Value::String) ec.fail(fmt::format("filter '{}' needs a string, got {}", name, v.type_name()), pos);
    return v.s;
  };
  if (name == "trim") return Value::str(strip(need_string(), a.at(0, "chars"), true, true));
  if (name == "length" || name == "count") return Value::integer(length_of(v, ec, pos));
  if (name == "tojson") {
    const Value* ind = a.at(0, "indent");
    int indent = -1;
    if (ind && ind->kind == Value::Int) {
      if (ind->i > 64) ec.fail(fmt::format("tojson indent {} is larger than 64", ind->i), pos);
      indent = static_cast<int>(std::max<int64_t>(ind->i, -1));
    }
    return ec.make_str(v.to_json(indent, ec.lim.max_output), "tojson result", pos);
  }
  if (name == "string") return ec.make_str(v.to_string(ec.lim.max_output), "string", pos);
  if (name == "upper") return Value::str(upper(need_string()));
  if (name == "lower") return Value::str(lower(need_string()));
  if (name == "capitalize") {
    std::string s = lower(need_string());
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return Value::str(s);
  }
  if (name == "title") {
    std::string s = need_string();
    bool start = true;
    for (auto& c : s) {
      auto uc = static_cast<unsigned char>(c);
      c = static_cast<char>(start ? std::toupper(uc) : std::tolower(uc));
      start = !std::isalnum(uc);
    }
    return Value::str(s);
  }
  if (name == "replace") {
    const Value* from = a.at(0, "old");
    const Value* to = a.at(1, "new");
    const Value* cnt = a.at(2, "count");
    if (!from || !to) ec.fail("filter 'replace' needs two arguments", pos);
    return ec.make_str(replace_all(need_string(), from->to_string(), to->to_string(),
                                   cnt && cnt->kind == Value::Int ? cnt->i : -1, ec, pos),
                       "filter 'replace' result", pos);
  }
  if (name == "items") {
    if (v.kind != Value::Dict) ec.fail(fmt::format("filter 'items' needs a dict, got {}", v.type_name()), pos);
    Array out;
    for (const auto& [k, x] : *v.obj) out.push_back(Value::list({Value::str(k), x}));
    return ec.make_list(std::move(out), "filter 'items' result", pos);
  }
  if (name == "join") {
    const Value* sep = a.at(0, "d");
    const Value* attr = a.kwarg("attribute");
    Value l = to_list(v, ec, pos);
    std::string out;
    for (size_t k = 0; k < l.arr->size(); ++k) {
      if (k && sep) out += sep->to_string(ec.lim.max_output);
      out += attr ? attr_of((*l.arr)[k], attr->to_string()).to_string(ec.lim.max_output)
                  : (*l.arr)[k].to_string(ec.lim.max_output);
      ec.check_string(out.size(), "filter 'join' result", pos);
    }
    return ec.make_str(std::move(out), "filter 'join' result", pos);
  }
  if (name == "default" || name == "d") {
    const Value* def = a.at(0, "default_value");
    const Value* boolean = a.at(1, "boolean");
    bool use_def = v.kind == Value::Undefined || (boolean && boolean->truthy() && !v.truthy());
    return use_def ? (def ? *def : Value::str("")) : v;
  }
  if (name == "first" || name == "last") {
    Value l = to_list(v, ec, pos);
    if (l.arr->empty()) return Value();
    return name == "first" ? l.arr->front() : l.arr->back();
  }
  if (name == "list") return to_list(v, ec, pos);
  if (name == "reverse") {
    if (v.kind == Value::String) return Value::str(std::string(v.s.rbegin(), v.s.rend()));
    Array r = *to_list(v, ec, pos).arr;
    std::reverse(r.begin(), r.end());
    return ec.make_list(std::move(r), "filter 'reverse' result", pos);
  }
  if (name == "int") {
    if (v.kind == Value::Int) return v;
    if (v.kind == Value::Float) {  // out of range (or NaN) would be undefined behaviour
      if (!(v.f > -9.2e18 && v.f < 9.2e18)) ec.fail(fmt::format("filter 'int': {} is out of range", v.f), pos);
      return Value::integer(static_cast<int64_t>(v.f));
    }
    if (v.kind == Value::String) { try { return Value::integer(std::stoll(v.s)); } catch (...) { return Value::integer(0); } }
    return Value::integer(0);
  }
  if (name == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    if (v.kind == Value::String) { try { return Value::number(std::stod(v.s)); } catch (...) { return Value::number(0); } }
    return Value::number(0);
  }
  if (name == "abs") {
    if (v.kind == Value::Int) {
      if (v.i == INT64_MIN) ec.fail("filter 'abs': integer overflow", pos);
      return Value::integer(v.i < 0 ? -v.i : v.i);
    }
    if (v.kind == Value::Float) return Value::number(v.f < 0 ? -v.f : v.f);
    ec.fail("filter 'abs' needs a number", pos);
  }
  if (name == "safe" || name == "e" || name == "escape") {
    if (name == "safe") return v;
    std::string s = v.to_string(ec.lim.max_output), out;
    ec.check_string(s.size() * 6, "filter 'escape' result", pos);  // at most 6 bytes per byte
    for (char c : s) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return ec.make_str(std::move(out), "filter 'escape' result", pos);
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    bool by_attr = name == "selectattr" || name == "rejectattr";
    bool keep_if = name == "selectattr" || name == "select";
    const Value* attr = by_attr ? a.at(0, "attribute") : nullptr;
    if (by_attr && (!attr || attr->kind != Value::String)) ec.fail(fmt::format("filter '{}' needs an attribute name", name), pos);
    size_t ti = by_attr ? 1 : 0;
    const Value* test = ti < a.pos.size() ? &a.pos[ti] : nullptr;
    Args targs;
    for (size_t k = ti + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
    Array out;
    const Value items = to_list(v, ec, pos);  // named: a temporary would die before the loop
    for (const auto& x : *items.arr) {
      Value item = by_attr ? attr_of(x, attr->s) : x;
      bool ok = test ? apply_test(test->to_string(), item, targs, ec, pos) : item.truthy();
      if (ok == keep_if) out.push_back(x);
    }
    return ec.make_list(std::move(out), "filter result", pos);
  }
  if (name == "map") {
    const Value* attr = a.kwarg("attribute");
    Array out;
    const Value items = to_list(v, ec, pos);  // named: a temporary would die before the loop
    for (const auto& x : *items.arr) {
      if (attr) {
        Value r = attr_of(x, attr->to_string());
        const Value* def = a.kwarg("default");
        out.push_back(r.kind == Value::Undefined && def ? *def : r);
      } else if (!a.pos.empty()) {
        Args rest;
        rest.pos.assign(a.pos.begin() + 1, a.pos.end());
        out.push_back(apply_filter(a.pos[0].to_string(), x, rest, ec, pos));
      } else {
        ec.fail("filter 'map' needs attribute= or a filter name", pos);
      }
    }
    return ec.make_list(std::move(out), "filter 'map' result", pos);
  }
  if (name == "unique") {
    Array out;
    const Value items = to_list(v, ec, pos);  // named: a temporary would die before the loop
    for (const auto& x : *items.arr) {
      ec.step(static_cast<int64_t>(out.size()) + 1, pos);  // quadratic: every pair costs a step
      bool seen = false;
      for (const auto& y : out) seen = seen || values_equal(x, y);
      if (!seen) out.push_back(x);
    }
    return ec.make_list(std::move(out), "filter 'unique' result", pos);
  }
  if (name == "indent") {
    const Value* w = a.at(0, "width");
    const Value* first = a.at(1, "first");
    if (w && w->kind == Value::Int && (w->i < 0 || w->i > 1000))
      ec.fail(fmt::format("filter 'indent' width {} is outside 0..1000", w->i), pos);
    std::string pad(w && w->kind == Value::Int ? static_cast<size_t>(w->i) : 4, ' ');
    std::string s = need_string(), out;
    for (size_t k = 0; k < s.size(); ++k) {
      out += s[k];
      if (s[k] == '\n' && k + 1 < s.size() && s[k + 1] != '\n') {
        out += pad;
        ec.check_string(out.size(), "filter 'indent' result", pos);
      }
    }
    std::string r = first && first->truthy() ? pad : std::string();
    r += out;
    return ec.make_str(std::move(r), "filter 'indent' result", pos);
  }
  ec.fail(fmt::format("unsupported filter '{}'", name), pos);
}

bool apply_test(const std::string& name, const Value& v, const Args& a, const ErrorCtx& ec, size_t pos) {
  if (name == "defined") return v.kind != Value::Undefined;
  if (name == "undefined") return v.kind == Value::Undefined;
  if (name == "none") return v.kind == Value::None;
  if (name == "string") return v.kind == Value::String;
  if (name == "mapping") return v.kind == Value::Dict;
  if (name == "iterable") return v.kind == Value::List || v.kind == Value::Dict || v.kind == Value::String;
  if (name == "sequence") return v.kind == Value::List || v.kind == Value::String || v.kind == Value::Dict;
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == Value::Int;
  if (name == "float") return v.kind == Value::Float;
  if (name == "boolean") return v.kind == Value::Bool;
  if (name == "true") return v.kind == Value::Bool && v.b;
  if (name == "false") return v.kind == Value::Bool && !v.b;
  if (name == "callable") return v.kind == Value::Func;
  if (name == "odd" || name == "even") {
    if (v.kind != Value::Int) ec.fail(fmt::format("test '{}' needs an integer", name), pos);
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (v.kind != Value::Int || a.pos.empty() || a.pos[0].kind != Value::Int || a.pos[0].i == 0)
      ec.fail("test 'divisibleby' needs integers", pos);
    return a.pos[0].i == -1 || v.i % a.pos[0].i == 0;  // INT64_MIN % -1 would overflow
  }
  if (name == "lower") return v.kind == Value::String && lower(v.s) == v.s;
  if (name == "upper") return v.kind == Value::String && upper(v.s) == v.s;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    if (a.pos.empty()) ec.fail(fmt::format("test '{}' needs an argument", name), pos);
    return values_equal(v, a.pos[0]);
  }
  if (name == "ne") return a.pos.empty() || !values_equal(v, a.pos[0]);
  if (name == "in") {
    if (a.pos.empty()) ec.fail("test 'in' needs an argument", pos);
    const Value& c = a.pos[0];
    if (c.kind == Value::String && v.kind == Value::String) return c.s.find(v.s) != std::string::npos;
    if (c.kind == Value::List) {
      ec.step(static_cast<int64_t>(c.arr->size()), pos);
      for (const auto& x : *c.arr) if (values_equal(v, x)) return true;
    }
    if (c.kind == Value::Dict) return v.kind == Value::String && c.get(v.s);
    return false;
  }
  ec.fail(fmt::format("unsupported test '{}'", name), pos);
}

Value call_method(const Value& o, const std::string& name, const Args& a, const ErrorCtx& ec, size_t pos, bool* found) {
  *found = true;
  if (o.kind == Value::String) {
    const std::string& s = o.s;
    if (name == "startswith" || name == "endswith") {
      const Value* x = a.at(0, "prefix");
      if (!x) ec.fail(fmt::format("'{}' needs an argument", name), pos);
      std::vector<std::string> opts;
      if (x->kind == Value::List) for (const auto& y : *x->arr) opts.push_back(y.to_string());
      else opts.push_back(x->to_string());
      for (const auto& p : opts) {
        if (p.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "split") return split(s, a.at(0, "sep"), a.at(1, "maxsplit"), ec, pos);
    if (name == "strip") return Value::str(strip(s, a.at(0, "chars"), true, true));
    if (name == "lstrip") return Value::str(strip(s, a.at(0, "chars"), true, false));
    if (name == "rstrip") return Value::str(strip(s, a.at(0, "chars"), false, true));
    if (name == "upper") return Value::str(upper(s));
    if (name == "lower") return Value::str(lower(s));
    if (name == "title" || name == "capitalize") return apply_filter(name, o, a, ec, pos);
    if (name == "replace") return apply_filter("replace", o, a, ec, pos);
    if (name == "find") {
      const Value* x = a.at(0, "sub");
      size_t at = x ? s.find(x->to_string()) : std::string::npos;
      return Value::integer(at == std::string::npos ? -1 : static_cast<int64_t>(at));
    }
    if (name == "count") {
      const Value* x = a.at(0, "sub");
      const std::string sub = x ? x->to_string(ec.lim.max_output) : std::string();
      if (sub.empty()) return Value::integer(0);
      int64_t n = 0;
      for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value::integer(n);
    }
    if (name == "join") {
      const Value* x = a.at(0, "iterable");
      std::string out;
      if (x) {
        Value l = to_list(*x, ec, pos);
        for (size_t k = 0; k < l.arr->size(); ++k) {
          if (k) out += s;
          out += (*l.arr)[k].to_string(ec.lim.max_output);
          ec.check_string(out.size(), "'join' result", pos);
        }
      }
      return ec.make_str(std::move(out), "'join' result", pos);
    }
  } else if (o.kind == Value::Dict) {
    if (name == "items") return apply_filter("items", o, a, ec, pos);
    if (name == "keys" || name == "values") {
      Array out;
      for (const auto& [k, x] : *o.obj) out.push_back(name == "keys" ? Value::str(k) : x);
      return ec.make_list(std::move(out), "dict keys/values", pos);
    }
    if (name == "get") {
      const Value* k = a.at(0, "key");
      const Value* r = k ? o.get(k->to_string()) : nullptr;
      if (r) return *r;
      const Value* d = a.at(1, "default");
      return d ? *d : Value::none();
    }
  } else if (o.kind == Value::List) {
    if (name == "append") {
      if (a.pos.empty()) ec.fail("'append' needs an argument", pos);
      o.arr->push_back(a.pos[0]);
      return Value::none();
    }
    if (name == "index") {
      for (size_t k = 0; k < o.arr->size(); ++k)
        if (!a.pos.empty() && values_equal((*o.arr)[k], a.pos[0])) return Value::integer(static_cast<int64_t>(k));
      ec.fail("value not in list", pos);
    }
  }
  *found = false;
  return Value();
}

void add_globals(Value& g, const ErrorCtx& ec_ref) {
  const ErrorCtx* ec = &ec_ref;  // lives in the evaluator, as long as the render
  auto fn = [&](const std::string& name, std::function<Value(const Args&)> f) {
    Value v;
    v.kind = Value::Func;
    v.fn = std::make_shared<Callable>();
    v.fn->call = std::move(f);
    g.set(name, v);
  };
  fn("raise_exception", [](const Args& a) -> Value {
    throw ChatTemplateError(
        fmt::format("chat template raised an exception: {}", a.pos.empty() ? std::string() : a.pos[0].to_string()));
  });
  fn("namespace", [](const Args& a) {
    Value ns = Value::dict();
    ns.is_namespace = true;
    if (!a.pos.empty() && a.pos[0].kind == Value::Dict)
      for (const auto& [k, v] : *a.pos[0].obj) ns.set(k, v);
    for (const auto& [k, v] : a.kw) ns.set(k, v);
    return ns;
  });
  fn("dict", [](const Args& a) {
    Value d = Value::dict();
    for (const auto& [k, v] : a.kw) d.set(k, v);
    return d;
  });
  fn("range", [ec](const Args& a) {
    for (const auto& x : a.pos)
      if (x.kind != Value::Int) throw ChatTemplateError(fmt::format("chat template: range() needs integers, got {}", x.type_name()));
    int64_t start = 0, stop = 0, step = 1;
    if (a.pos.size() == 1) stop = a.pos[0].i;
    else if (a.pos.size() >= 2) { start = a.pos[0].i; stop = a.pos[1].i; }
    if (a.pos.size() >= 3) step = a.pos[2].i;
    if (step == 0) throw ChatTemplateError("chat template: range() step cannot be zero");
    // Element count in 128-bit arithmetic: no int64 overflow for any arguments.
    const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
    const __int128 mag = step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step);
    const __int128 count = span <= 0 ? 0 : (span + mag - 1) / mag;
    if (count > static_cast<__int128>(ec->lim.max_list))
      throw ChatTemplateError(fmt::format("chat template: range() of {} elements exceeds the limit of {}",
                                          static_cast<double>(count), ec->lim.max_list));
    Array out;
    out.reserve(static_cast<size_t>(count));
    for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) out.push_back(Value::integer(start + k * step));
    return ec->make_list(std::move(out), "range()", 0);
  });
  fn("strftime_now", [](const Args& a) {
    std::string f = a.pos.empty() ? std::string("%Y-%m-%d") : a.pos[0].to_string();
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), f.c_str(), &tm);
    return Value::str(std::string(buf, n));
  });
}

}  // namespace moe::jinja
