// `moe chat -m MODEL`: an interactive conversation with the model's own chat
// template (ChatML when the file has none). Each turn re-renders the whole
// conversation, keeps the KV cache for the longest common token prefix and
// evaluates only the rest. Reads stdin line by line; /reset clears, /exit quits.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace moe::tools {
namespace {

const char* kChatMl =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}";

struct ChatOptions {
  std::string model, system;
  int n_predict = 512;
  int threads = 0;
  int64_t ctx = 4096;
  SamplerParams sp;
  std::string kv_type = "f32";
  std::string mem;  // --mem
};

void chat(const ChatOptions& o) {
  const int64_t mem = mem_bytes(o.mem);
  auto model = load_with_progress(o.model, mem > 0);
  auto tok = Tokenizer::from_gguf(*model->file);
  std::string tmpl = tok->chat_template();
  if (tmpl.empty()) {
    MOE_LOG_WARN("{} has no chat template; using ChatML", o.model);
    tmpl = kChatMl;
  }
  Context ctx(model, {.n_ctx = o.ctx, .n_threads = o.threads, .kv_f16 = o.kv_type == "f16",
                      .mem_budget = mem});
  Sampler sampler(o.sp);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  nlohmann::ordered_json extra = {
      {"bos_token", tok->bos_id() >= 0 ? tok->token_text(tok->bos_id()) : ""},
      {"eos_token", tok->eos_id() >= 0 ? tok->token_text(tok->eos_id()) : ""}};
  std::vector<int32_t> cached;  // tokens whose K/V are in the cache
  std::vector<float> logits;
  fmt::print(stderr, "moe chat: {} ({}). Type a message; /reset clears the conversation, /exit quits.\n",
             o.model, model->cfg.arch);
  std::string line;
  while (true) {
    fmt::print(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      messages.erase(messages.begin() + (o.system.empty() ? 0 : 1), messages.end());
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    const std::string prompt = render_chat(tmpl, messages, true, extra);
    std::vector<int32_t> ids = tok->encode(prompt, /*add_special=*/tok->add_bos(), /*parse_special=*/true);
    // Reuse the cached prefix.
    size_t keep = 0;
    while (keep < cached.size() && keep < ids.size() && cached[keep] == ids[keep]) ++keep;
    if (keep == ids.size()) --keep;  // always evaluate at least one token for fresh logits
    ctx.truncate(0, static_cast<int64_t>(keep));
    cached.resize(keep);
    if (static_cast<int64_t>(ids.size()) + o.n_predict > o.ctx)
      throw_error("conversation needs {} + {} tokens, more than the context size {} (raise -c or /reset)",
                  ids.size(), o.n_predict, o.ctx);
    std::span<const int32_t> fresh(ids.data() + keep, ids.size() - keep);
    ctx.eval(fresh, logits, false);
    cached.insert(cached.end(), fresh.begin(), fresh.end());
    StreamDecoder dec(*tok, /*skip_special=*/true);
    std::string reply;
    for (int i = 0; i < o.n_predict; ++i) {
      const int32_t id = sampler.sample(logits, cached);
      if (tok->is_eog(id)) break;
      const std::string piece = dec.push(id);
      reply += piece;
      fmt::print("{}", piece);
      std::fflush(stdout);
      const int32_t one[1] = {id};
      ctx.eval(one, logits, false);
      cached.push_back(id);
    }
    reply += dec.flush();
    fmt::print("\n");
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
}

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  o->sp.temperature = 0.7f;
  auto* cmd = app.add_subcommand("chat", "Chat with a model interactively through its chat template");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-s,--system", o->system, "System prompt");
  cmd->add_option("-n,--n-predict", o->n_predict, "Most tokens per reply")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size (tokens)")->capture_default_str();
  add_sampler_options(cmd, o->sp);
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f32, or f16 (half the memory)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  add_mem_option(cmd, o->mem);
  cmd->callback([o] { chat(*o); });
}

}  // namespace

MOE_REGISTER_COMMAND(chat, register_chat);

}  // namespace moe::tools
