// libFuzzer entry point for HTTP request bodies (optional, clang only; not run in CI).
// Build: CXX=clang++ cmake -DMOE_SERVER_LIBFUZZER=ON ..., target server_libfuzzer; run
// e.g. `server_libfuzzer -max_len=65536 -timeout=5 CORPUS_DIR`. The model (for its
// tokenizer) is synthesized once at start-up. Invariant: request_fuzz.h's oracle, for
// both endpoints, under ChatML: a valid ParsedRequest or a 4xx ApiError, nothing else.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unistd.h>

#include "model/model.h"
#include "model/synth.h"
#include "request_fuzz.h"

namespace {

struct State {
  std::shared_ptr<moe::Model> model;
  std::unique_ptr<moe::Tokenizer> tok;
  std::string tmpl = moe::server::kChatMlTemplate;
  moe::server::Limits lim{.n_ctx = 256, .max_prompt_tokens = 0, .max_tokens = 64, .default_max_tokens = 0};
};
State* g_state = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("moe_server_libfuzzer_" + std::to_string(getpid()) + ".gguf")).string();
  moe::SynthOptions o;
  o.type = moe::GgmlType::Q8_0;
  o.std = 0;
  moe::synthesize_model(o, path);
  g_state = new State;
  g_state->model = moe::load_model(path);
  g_state->tok = moe::Tokenizer::from_gguf(*g_state->model->file);
  std::filesystem::remove(path);  // mapped: the file stays readable until unmapped
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const moe::server::PromptContext pc{*g_state->tok, g_state->tmpl, g_state->lim};
  // A broken invariant throws std::logic_error out of here: libFuzzer reports it as a crash.
  moe::server::fuzz::run_one(body, true, pc);
  moe::server::fuzz::run_one(body, false, pc);
  return 0;
}
