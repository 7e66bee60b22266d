// libFuzzer entry point for chat templates (optional, clang only; not run in CI).
// Build: CXX=clang++ cmake -DMOE_JINJA_LIBFUZZER=ON ..., target jinja_libfuzzer;
// seed it with tests/tokenizer/templates/*.jinja. Input: template bytes, then
// optionally a NUL byte and a JSON object of variables (its "messages" is the
// conversation). Invariants: parse throws only moe::Error, render only
// ChatTemplateError, within small Limits (so each input runs in milliseconds).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "tokenizer/chat_error.h"
#include "tokenizer/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string tmpl = in.substr(0, nul);
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  if (nul != std::string::npos) {
    vars = nlohmann::ordered_json::parse(in.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (!vars.is_object()) vars = nlohmann::ordered_json::object();
  }
  moe::jinja::Limits lim;
  lim.max_steps = 100000;
  lim.max_loop_iterations = 10000;
  lim.max_output = 1 << 20;
  lim.max_list = 10000;
  lim.max_bytes = 16 << 20;
  std::string pre;
  moe::jinja::NodePtr root;
  try {
    root = moe::jinja::parse(tmpl, pre);
  } catch (const moe::ChatTemplateError&) {
    __builtin_trap();  // parse errors are plain moe::Error
  } catch (const moe::Error&) {
    return 0;
  }
  try {
    moe::jinja::Value ctx = moe::jinja::Value::dict();
    for (auto it = vars.begin(); it != vars.end(); ++it)
      ctx.set(it.key(), moe::jinja::Value::from_json(it.value(), it.key(), lim.max_input_depth));
    const std::string out = moe::jinja::render(*root, pre, ctx, lim);
    if (out.size() > lim.max_output) __builtin_trap();
  } catch (const moe::ChatTemplateError&) {
  }
  return 0;
}
