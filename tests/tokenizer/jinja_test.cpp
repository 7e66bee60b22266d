// Unit tests of the Jinja subset: each construct the chat templates use, the
// whitespace rules (trim_blocks, lstrip_blocks, {%- -%}), and the errors for
// unsupported constructs (which must name the construct and the position).
#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using nlohmann::ordered_json;

std::string R(const std::string& src, const ordered_json& vars = ordered_json::object()) {
  return moe::render_chat(src, ordered_json::array(), false, vars);
}

TEST(Jinja, TextAndOutput) {
  EXPECT_EQ(R("hello"), "hello");
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none }}"), "a1None");
  EXPECT_EQ(R("{{ x }}|{{ x.y }}", {{"x", ordered_json::object()}}), "{}|");
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 3 / 2 }} {{ 2 ** 3 }} {{ -4 }}"), "7 3 1 1.5 8 -4");
  EXPECT_EQ(R("{{ 'a' + 'b' }}{{ [1] + [2] }}"), "ab[1, 2]");
}

TEST(Jinja, ForLoop) {
  ordered_json v = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}{{ x }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %},{% endfor %}", v),
            "1aF,2b,3cL,");
  EXPECT_EQ(R("{% for x in xs if x != 'b' %}{{ loop.index0 }}{{ x }}{{ loop.length }}{% endfor %}", v), "0a21c2");
  EXPECT_EQ(R("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1;a=2;");
  EXPECT_EQ(R("{% for x in xs %}{% if x == 'b' %}{% break %}{% endif %}{{ x }}{% endfor %}", v), "a");
  EXPECT_EQ(R("{% for x in xs[::-1] %}{{ x }}{% endfor %}{{ xs[1:] }}{{ xs[-1] }}{{ 'abc'[::-1] }}", v), "cba[\"b\", \"c\"]ccba");
}

TEST(Jinja, SetScopingAndNamespace) {
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"), "241");
  EXPECT_EQ(R("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(R("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(R("{% set t %}x{{ 1 }}y{% endset %}[{{ t }}]"), "[x1y]");
}

TEST(Jinja, IfElifElseAndTernary) {
  const char* t = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
  EXPECT_EQ(R(t, {{"n", 3}}), "big");
  EXPECT_EQ(R(t, {{"n", 2}}), "two");
  EXPECT_EQ(R(t, {{"n", 1}}), "small");
  EXPECT_EQ(R("{{ 'y' if x else 'n' }}{{ 'z' if not x }}", {{"x", false}}), "nz");
  EXPECT_EQ(R("{{ 'a' in 'cat' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'q' not in d }}", {{"d", {{"k", 1}}}}), "TrueTrueTrueTrue");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(R("{% macro f(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ f(1) }}{{ f(2, b='x') }}{{ f(3, 'y') }}"), "<1B><2x><3y>");
  EXPECT_EQ(R("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(4) }}"), "24");
}

TEST(Jinja, FiltersAndMethods) {
  ordered_json v = {{"s", "  Hi There  "}, {"xs", {3, 1, 2}},
                    {"users", {{{"name", "a"}, {"on", true}}, {{"name", "b"}, {"on", false}}}}};
  EXPECT_EQ(R("[{{ s|trim }}][{{ s|length }}][{{ s|upper }}][{{ s|lower }}][{{ s|replace('Hi', 'Yo') }}]", v),
            "[Hi There][12][  HI THERE  ][  hi there  ][  Yo There  ]");
  EXPECT_EQ(R("{{ xs|join(', ') }}|{{ xs|first }}{{ xs|last }}|{{ missing|default('d') }}|{{ ''|default('e', true) }}", v), "3, 1, 2|32|d|e");
  EXPECT_EQ(R("{{ users|selectattr('on')|map(attribute='name')|join }}{{ users|rejectattr('on')|map(attribute='name')|list }}", v), "a[\"b\"]");
  EXPECT_EQ(R("{{ users|selectattr('name', 'equalto', 'b')|length }}", v), "1");
  EXPECT_EQ(R("{{ {'a': [1, 'x', none, true]}|tojson }}"), "{\"a\": [1, \"x\", null, true]}");
  EXPECT_EQ(R("{{ {'a': 1, 'b': [2]}|tojson(indent=2) }}"), "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}");
  EXPECT_EQ(R("{{ 'x\"\\n'|tojson }}{{ 5|string }}"), "\"x\\\"\\n\"5");
  EXPECT_EQ(R("{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxaxx'.strip('x') }}", v), "Hi There|Hi There  |  Hi There|a");
  EXPECT_EQ(R("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a</t>b'.split('</t>')[-1] }}"),
            "[\"a\", \"b\", \"\", \"c\"][\"a\", \"b\"]b");
  EXPECT_EQ(R("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith('x') }}{{ d.get('k') }}{{ d.get('z', 0) }}", {{"d", {{"k", 7}}}}),
            "TrueFalse70");
}

TEST(Jinja, Tests) {
  ordered_json v = {{"s", "x"}, {"n", nullptr}, {"d", ordered_json::object()}, {"l", {1}}};
  EXPECT_EQ(R("{{ s is defined }}{{ u is defined }}{{ u is undefined }}{{ n is none }}{{ s is string }}{{ d is mapping }}", v),
            "TrueFalseTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ l is iterable }}{{ s is not string }}{{ 3 is odd }}{{ 4 is even }}{{ 2 is number }}{{ n is not none }}", v),
            "TrueFalseTrueTrueTrueFalse");
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(R("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(R("a\n  {% if true %}\nb\n  {% endif %}\nc"), "a\nb\nc");  // lstrip_blocks + trim_blocks
  EXPECT_EQ(R("x {# comment #} y\n"), "x  y");                         // trailing newline dropped
  EXPECT_EQ(R("  {{- 'a' -}}  \n b"), "ab");
}

TEST(Jinja, ChatVariables) {
  ordered_json msgs = {{{"role", "user"}, {"content", "hi"}}};
  std::string t = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}>{% endif %}";
  EXPECT_EQ(moe::render_chat(t, msgs, true, ordered_json{{"bos_token", "<s>"}}), "<s>user:hi>");
  EXPECT_EQ(moe::render_chat(t, msgs, false, ordered_json{{"bos_token", "<s>"}}), "<s>user:hi");
  std::string date = R("{{ strftime_now('%Y') }}");
  EXPECT_EQ(date.size(), 4u);
}

void expect_error(const std::string& src, const std::string& needle) {
  try {
    R(src);
    ADD_FAILURE() << "no error for: " << src;
  } catch (const moe::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find("line"), std::string::npos) << msg;
  }
}

TEST(Jinja, Errors) {
  expect_error("{{ x|frobnicate }}", "unsupported filter 'frobnicate'");
  expect_error("{% include 'x' %}", "unsupported statement '{% include %}'");
  expect_error("a\n{{ x is weird }}", "unsupported test 'weird'");
  expect_error("{% if x %}", "missing '{% endif %}'");
  expect_error("{{ 'abc'.zap() }}", "unsupported method 'zap'");
  expect_error("{{ 1 + }}", "unexpected");
  expect_error("{{ 'unterminated }}", "unterminated string");
  try {
    R("{{ raise_exception('bad roles') }}");
    ADD_FAILURE();
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad roles"), std::string::npos);
  }
}

}  // namespace
