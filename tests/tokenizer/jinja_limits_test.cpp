// Resource limits of the Jinja interpreter and of render_chat (issue 12): deep
// JSON input, deep or self-containing values, parser nesting, macro recursion,
// range/repetition/concatenation sizes, loop iterations, steps and output
// length. Each hostile input must end in the documented error type (render-time:
// ChatTemplateError; parse-time: moe::Error) naming the construct, never in a
// crash. The worst accepted nesting runs on a thread with a small stack, so a
// change that makes a frame much larger fails here rather than in a server.
#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>
#include <string>

#include "base/error.h"
#include "tokenizer/chat_error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace {

using nlohmann::ordered_json;

std::string R(const std::string& src, const ordered_json& vars = ordered_json::object()) {
  return moe::render_chat(src, ordered_json::array(), false, vars);
}

std::string render_with(const std::string& src, const moe::jinja::Limits& lim) {
  std::string pre;
  auto root = moe::jinja::parse(src, pre);
  return moe::jinja::render(*root, pre, moe::jinja::Value::dict(), lim);
}

// Expects a render-time ChatTemplateError whose message contains `what`.
void expect_render_error(const std::string& src, const std::string& what, const ordered_json& vars = ordered_json::object()) {
  try {
    R(src, vars);
    ADD_FAILURE() << "no error for: " << src.substr(0, 200);
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type for " << src.substr(0, 200) << ": " << e.what();
  }
}

// Expects a parse-time moe::Error (not a ChatTemplateError) containing `what`.
void expect_parse_error(const std::string& src, const std::string& what) {
  try {
    R(src);
    ADD_FAILURE() << "no error for: " << src.substr(0, 200);
  } catch (const moe::ChatTemplateError& e) {
    ADD_FAILURE() << "parse error reported as a render error: " << e.what();
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

// Nested arrays, built in place (copying a deep json would itself recurse).
template <typename J>
void nest_arrays(J& root, int depth) {
  J* cur = &root;
  for (int i = 0; i < depth; ++i) {
    *cur = J::array();
    cur->push_back(J());
    cur = &(*cur)[0];
  }
}

// Runs fn on a thread with the given stack size; reports what it threw.
std::string on_small_stack(size_t stack_bytes, const std::function<void()>& fn) {
  struct Job {
    const std::function<void()>* fn;
    std::string error;
  } job{&fn, ""};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t t;
  auto body = [](void* p) -> void* {
    auto* j = static_cast<Job*>(p);
    try {
      (*j->fn)();
    } catch (const std::exception& e) {
      j->error = e.what();
    }
    return nullptr;
  };
  EXPECT_EQ(pthread_create(&t, &attr, body, &job), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  return job.error;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStack = size_t{8} << 20;  // sanitizer frames are several times larger
#else
constexpr size_t kStack = size_t{1} << 20;
#endif

TEST(JinjaLimits, DeepMessageFieldIsA400StyleErrorNamingTheField) {
  for (int depth : {129, 50000}) {
    nlohmann::json msgs = nlohmann::json::array();
    msgs.push_back({{"role", "user"}, {"content", "hi"}});
    msgs.push_back({{"role", "user"}, {"content", "x"}});
    nest_arrays(msgs[1]["meta"], depth);
    try {
      moe::render_chat("{{ messages[0].content }}", msgs, true);
      ADD_FAILURE() << "depth " << depth << " accepted";
    } catch (const moe::ChatTemplateError& e) {
      EXPECT_EQ(e.field(), "messages[1].meta");
      EXPECT_NE(std::string(e.what()).find("nested deeper than 128 levels"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("messages[1].meta[0][0]"), std::string::npos) << e.what();
    }
  }
  // At the limit it renders: messages is level 1 and a message 2, so 126 arrays fit below its field.
  nlohmann::json ok = nlohmann::json::array();
  ok.push_back({{"role", "user"}, {"content", "hi"}});
  nest_arrays(ok[0]["meta"], 126);
  EXPECT_EQ(moe::render_chat("{{ messages[0].content }}", ok, true), "hi");
}

TEST(JinjaLimits, DeepTemplateKwargIsNamed) {
  ordered_json extra = ordered_json::object();
  nest_arrays(extra["deep"], 50000);
  try {
    R("{{ 1 }}", extra);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_EQ(e.field(), "deep");
  }
  // Object nesting, and a key that is not printable, are named safely.
  ordered_json o = ordered_json::object();
  ordered_json* cur = &o["k\xff\x01"];
  for (int i = 0; i < 300; ++i) cur = &(*cur)["a"];
  try {
    R("{{ 1 }}", o);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_EQ(e.field(), "k??.a");
    EXPECT_NE(std::string(e.what()).find("k??.a.a.a"), std::string::npos) << e.what();
  }
}

TEST(JinjaLimits, HugeUnsignedBecomesFloat) {
  EXPECT_EQ(R("{{ x > 9223372036854775807 }}", {{"x", 18446744073709551615ull}}), "True");
}

TEST(JinjaLimits, DeepAndSelfContainingValues) {
  // 1000 levels built in a loop scope (no namespace, so no cycle check on the way).
  const std::string deep = "{% set x = [] %}{% for i in range(1000) %}{% set x = [x] %}{% if loop.last %}";
  const std::string end = "{% endif %}{% endfor %}";
  expect_render_error(deep + "{{ x }}" + end, "cannot be printed or serialised");
  expect_render_error(deep + "{{ x|tojson }}" + end, "cannot be printed or serialised");
  expect_render_error(deep + "{{ x == [x] }}" + end, "cannot be compared");
  expect_render_error(deep + "{{ 1 in [x] }}{{ x in [[x]] }}" + end, "cannot be compared");
  expect_render_error(deep + "{% set ns = namespace() %}{% set ns.x = x %}" + end, "cannot be compared or searched");
  expect_render_error(
      "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}",
      "nested deeper than 256");
  expect_render_error("{% set a = [] %}{{ a.append(a) }}", "cannot contain itself");
  expect_render_error("{% set a = [] %}{% set b = [a] %}{{ a.append(b) }}", "cannot contain itself");
  expect_render_error("{% set ns = namespace() %}{% set ns.me = ns %}", "cannot contain itself");
  expect_render_error("{% set ns = namespace(l=[]) %}{{ ns.l.append(ns) }}", "cannot contain itself");
  EXPECT_EQ(R("{% set a = [1] %}{% set b = [] %}{{ b.append(a) }}{{ b.append(a) }}{{ b }}"), "NoneNone[[1], [1]]");
  expect_render_error("{{ {'a': 1}|tojson(indent=100000) }}", "larger than 64");
}

TEST(JinjaLimits, FreeingAVeryDeepValueDoesNotRecurse) {
  // 100k levels, built by rebinding in a loop scope and by appending down a chain;
  // both are freed when the render ends (on a small stack: no recursion).
  std::string err = on_small_stack(kStack, [] {
    R("{% set x = [] %}{% for i in range(100000) %}{% set x = [x] %}{% endfor %}");
    R("{% set ns = namespace(cur=[]) %}{% set root = ns.cur %}{% for i in range(100000) %}{% set n = {'a': []} %}"
      "{{ ns.cur.append(n) }}{% set ns.cur = n.a %}{% endfor %}{{ root|length }}");
  });
  EXPECT_EQ(err, "");
}

TEST(JinjaLimits, LoopOverAListThatGrowsInItsBody) {
  // Iterates over the length at the start; appends reallocate the list under the
  // loop (ASan checks no element is read from the old storage).
  EXPECT_EQ(R("{% set l = [1, 2] %}{% for x in l %}{{ l.append(x * 10) }}{{ x }}{{ loop.nextitem }}{% endfor %}{{ l }}"),
            "None12None2[1, 2, 10, 20]");
  EXPECT_EQ(R("{% set l = ['a'] %}{% for x in l if l.append(x) is none %}{{ x }}{% endfor %}{{ l|length }}"), "a2");
}

TEST(JinjaLimits, ParserNesting) {
  expect_parse_error("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ " + repeat("[", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ " + repeat("-", 100000) + "1 }}", "nesting deeper than 256");
  expect_parse_error("{{ " + repeat("not ", 100000) + "1 }}", "nesting deeper than 256");
  expect_parse_error("{{ 1" + repeat(" + 1", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ x" + repeat("|trim", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ x" + repeat(".a", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ x" + repeat("[0]", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error("{{ 1" + repeat(" if 1 else 1", 100000) + " }}", "nesting deeper than 256");
  expect_parse_error(repeat("{% if 1 %}", 100000) + repeat("{% endif %}", 100000), "nesting deeper than 256");
  expect_parse_error(repeat("{% for x in y %}", 100000), "nesting deeper than 256");
  expect_parse_error("{% if 0 %}" + repeat("{% elif 0 %}", 100000) + "{% endif %}", "nesting deeper than 256");
  expect_parse_error("{{ 99999999999999999999 }}", "out of range");
  // Real nesting well inside the limits parses and renders.
  EXPECT_EQ(R("{{ " + repeat("(", 50) + "1" + repeat(")", 50) + repeat(" + 1", 100) + " }}"), "101");
  EXPECT_EQ(R(repeat("{% if 1 %}", 60) + "x" + repeat("{% endif %}", 60)), "x");
}

TEST(JinjaLimits, MacroRecursion) {
  expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper than");
  std::string want;
  for (int i = 0; i <= 50; ++i) want += std::to_string(i);
  EXPECT_EQ(R("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ f(50) }}"), want);
}

TEST(JinjaLimits, StackBudget) {
  moe::jinja::Limits lim;
  lim.max_stack_bytes = 64 << 10;
  try {
    render_with("{% macro f(n) %}{% for i in [n] %}{{ f(n + 1) }}{% endfor %}{% endmacro %}{{ f(0) }}", lim);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("stack budget of 65536 bytes"), std::string::npos) << e.what();
  }
  // With the default budget, recursion as deep as the macro limit allows fits a server thread (8 MiB).
  std::string err = on_small_stack(size_t{8} << 20, [] {
    R("{% macro f(n) %}{% for i in [n] %}{% if i < 1000 %}{{ f(n + 1)|trim ~ (i|string) }}{% endif %}{% endfor %}"
      "{% endmacro %}{{ f(0) }}");
  });
  EXPECT_NE(err.find("nested deeper than"), std::string::npos) << err;
}

TEST(JinjaLimits, SizesOfRangeRepetitionAndLists) {
  expect_render_error("{{ range(10 ** 9)|length }}", "range() of 1000000000 elements exceeds the limit of 1000000");
  expect_render_error("{{ range(-9223372036854775807, 9223372036854775807)|length }}", "exceeds the limit");
  expect_render_error("{{ range('a') }}", "range() needs integers");
  expect_render_error("{{ 'x' * 10 ** 9 }}", "string repetition");
  expect_render_error("{{ 'xy' * 9223372036854775807 }}", "string repetition");
  EXPECT_EQ(R("{{ 'ab' * 3 }}|{{ 'ab' * -3 }}|{{ range(3)|list }}|{{ range(5, 0, -2)|list }}"), "ababab||[0, 1, 2]|[5, 3, 1]");
  expect_render_error(
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
      "list concatenation exceeds 1000000 elements");
  expect_render_error(
      "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "string concatenation");
  moe::jinja::Limits lim;
  lim.max_list = 1000;
  try {
    render_with("{% set l = [] %}{% for i in range(1000) %}{{ l.append(i) }}{% endfor %}{{ l.append(1) }}", lim);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("list grows past the limit of 1000 elements"), std::string::npos) << e.what();
  }
  expect_render_error("{{ ('x' * 16000000)|replace('x', 'yy') }}", "filter 'replace' result");
  expect_render_error("{{ ('x\n' * 1000000)|indent(100) }}", "filter 'indent' result");
  expect_render_error("{{ 'x'|indent(-1) }}", "outside 0..1000");
  expect_render_error("{{ ('x' * 2000000)|list|length }}", "exceeds the limit of 1000000");
  expect_render_error("{{ (' x' * 1500000).split()|length }}", "split result exceeds the limit of 1000000");
  expect_render_error("{{ ('x,' * 1500000).split(',')|length }}", "split result exceeds the limit of 1000000");
  EXPECT_EQ(R("{{ ('x' * 2000000).split(',')|length }}"), "1");  // a long string with few parts is fine
  EXPECT_EQ(R("{{ 'abcab'.count(5) }}{{ 'abcab'.count('ab') }}"), "02");
}

TEST(JinjaLimits, LoopIterationsStepsAndOutput) {
  moe::jinja::Limits few;
  few.max_loop_iterations = 10000;
  try {  // nested loops count together
    render_with("{% for i in range(100) %}{% for j in range(100) %}{% for k in range(2) %}{% endfor %}{% endfor %}"
                "{% endfor %}", few);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 10000 iterations"), std::string::npos) << e.what();
  }
  EXPECT_EQ(render_with("{% for i in range(100) %}{% for j in range(99) %}{% endfor %}{% endfor %}", few), "");
  expect_render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output exceeds 16777216 bytes");
  moe::jinja::Limits small;
  small.max_steps = 10000;
  try {
    render_with("{% for i in range(5000) %}{{ i }}{% endfor %}", small);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds 10000 steps"), std::string::npos) << e.what();
  }
  small = {};
  small.max_bytes = 1 << 20;
  try {
    render_with("{% set s = 'x' * 100000 %}{% for i in range(100) %}{% set t = s %}{% endfor %}", small);
    ADD_FAILURE();
  } catch (const moe::ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 1048576 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(render_with("{% for i in range(3) %}{{ i }}{% endfor %}", {}), "012");
}

TEST(JinjaLimits, IntegerOverflowIsAnError) {
  expect_render_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
  expect_render_error("{{ -9223372036854775807 - 2 }}", "integer overflow");
  expect_render_error("{{ 4294967296 * 4294967296 }}", "integer overflow");
  expect_render_error("{{ 2 ** 64 }}", "integer overflow");
  expect_render_error("{{ -(-9223372036854775807 - 1) }}", "integer overflow");
  expect_render_error("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow");
  expect_render_error("{{ (-9223372036854775807 - 1)|abs }}", "integer overflow");
  expect_render_error("{{ (10.0 ** 400)|int }}", "out of range");
  EXPECT_EQ(R("{{ 2 ** 62 }} {{ (-9223372036854775807 - 1) % -1 }} {{ 7 // -1 }} {{ (-9223372036854775807 - 1) is divisibleby(-1) }}"),
            "4611686018427387904 0 -7 True");
  EXPECT_EQ(R("{{ [1, 2, 3][::9223372036854775807] }}{{ [1, 2, 3][::-9223372036854775807 - 1] }}{{ 'abc'[-9223372036854775807:] }}"),
            "[1][3]abc");
  EXPECT_EQ(R("{{ x.99999999999999999999999 }}", {{"x", {1}}}), "");
}

TEST(JinjaLimits, ErrorTypes) {
  expect_render_error("{{ raise_exception('bad roles') }}", "bad roles");
  expect_render_error("{{ x|frobnicate }}", "unsupported filter");
  expect_render_error("{{ 1 / 0 }}", "division by zero");
  expect_parse_error("{% if x %}", "missing");
}

TEST(JinjaLimits, WorstAcceptedNestingFitsASmallStack) {
  // Each case runs into (or right up to) its limit; a stack overflow would crash the test.
  std::string err = on_small_stack(kStack, [] { R("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); });
  EXPECT_NE(err.find("nested deeper than"), std::string::npos) << err;
  err = on_small_stack(kStack, [] { R("{{ " + repeat("(", 127) + "1" + repeat(")", 127) + " }}"); });
  EXPECT_EQ(err, "");
  err = on_small_stack(kStack, [] { R("{{ " + repeat("(", 100000) + " }}"); });
  EXPECT_NE(err.find("nesting deeper"), std::string::npos) << err;
  err = on_small_stack(kStack, [] { R("{{ x" + repeat("|trim", 250) + " }}", {{"x", "a"}}); });
  EXPECT_EQ(err, "");
  err = on_small_stack(kStack, [] {
    R("{% set ns = namespace(x=[]) %}{% for i in range(250) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x|tojson }}{{ ns.x == ns.x[0] }}");
  });
  EXPECT_EQ(err, "");
  err = on_small_stack(kStack, [] {
    ordered_json m = ordered_json::array();
    m.push_back({{"role", "user"}});
    nest_arrays(m[0]["content"], 126);
    moe::render_chat("{{ messages|tojson }}", m, true);
  });
  EXPECT_EQ(err, "");
  err = on_small_stack(kStack, [] {
    R("{% macro f(n) %}{% if n > 0 %}{{ (((((f(n - 1)))))) ~ 'x' }}{% endif %}{% endmacro %}{{ f(1000) }}");
  });
  EXPECT_NE(err.find("nested deeper than"), std::string::npos) << err;
}

}  // namespace
