// `moe synth`: write a random-weight GGUF model of any supported architecture,
// size and weight type (tests and benchmarks use it).
#include <fmt/format.h>

#include <memory>

#include "base/error.h"
#include "base/timer.h"
#include "model/synth.h"
#include "tools/commands.h"

namespace moe::tools {

static void register_synth_command(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("f32");
  auto embd_type = std::make_shared<std::string>("");
  auto* cmd = app.add_subcommand("synth", "Write a random-weight GGUF model (for tests and benchmarks)");
  cmd->add_option("-o,--out", *out, "Output .gguf path")->required();
  cmd->add_option("--arch", o->arch, "llama | qwen3 | qwen3moe | olmoe | qwen2moe | gpt-oss | deepseek2")->capture_default_str();
  cmd->add_option("--layers", o->n_layer, "Number of layers")->capture_default_str();
  cmd->add_option("--embd", o->n_embd, "Embedding width")->capture_default_str();
  cmd->add_option("--heads", o->n_head, "Attention heads")->capture_default_str();
  cmd->add_option("--kv-heads", o->n_head_kv, "Key/value heads")->capture_default_str();
  cmd->add_option("--head-dim", o->head_dim, "Head dimension")->capture_default_str();
  cmd->add_option("--vocab", o->n_vocab, "Vocabulary size (built-in BPE)")->capture_default_str();
  cmd->add_option("--ff", o->n_ff, "Dense FFN width")->capture_default_str();
  cmd->add_option("--experts", o->n_expert, "Routed experts (0: dense)")->capture_default_str();
  cmd->add_option("--top-k", o->n_expert_used, "Experts per token")->capture_default_str();
  cmd->add_option("--expert-ff", o->n_ff_exp, "Expert FFN width")->capture_default_str();
  cmd->add_option("--shared-ff", o->n_ff_shexp, "Shared expert FFN width (qwen2moe)")->capture_default_str();
  cmd->add_option("--ctx-train", o->n_ctx_train, "Training context length (metadata)")->capture_default_str();
  cmd->add_option("--rope-base", o->rope_base, "RoPE base")->capture_default_str();
  cmd->add_option("--yarn", o->yarn_factor, "YaRN rope scaling factor (> 1 enables it)");
  cmd->add_option("--swa", o->n_swa, "gpt-oss: sliding window of the even layers (default 8)");
  cmd->add_option("--q-lora", o->q_lora_rank, "deepseek2: q low rank (0: direct q)")->capture_default_str();
  cmd->add_option("--kv-lora", o->kv_lora_rank, "deepseek2: kv latent rank")->capture_default_str();
  cmd->add_option("--rope-dims", o->qk_rope, "deepseek2: rotary dims per head (head-dim = nope + rope)")->capture_default_str();
  cmd->add_option("--v-head", o->v_head, "deepseek2: value dims per head (default head-dim - rope-dims)");
  cmd->add_option("--dense-lead", o->n_dense_lead, "deepseek2: leading dense layers")->capture_default_str();
  cmd->add_option("--shared-experts", o->n_expert_shared, "deepseek2: shared experts")->capture_default_str();
  cmd->add_option("--groups", o->n_group, "deepseek2: expert groups")->capture_default_str();
  cmd->add_option("--groups-used", o->n_group_used, "deepseek2: groups kept per token")->capture_default_str();
  cmd->add_option("--routed-scale", o->routed_scale, "deepseek2: routed expert weight scale")->capture_default_str();
  cmd->add_option("--type", *type, "Weight type of matrices: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K mxfp4")->capture_default_str();
  cmd->add_option("--embd-type", *embd_type, "Type of token_embd/output (default: f32)");
  cmd->add_option("--std", o->std, "Std of weights (<= 0: 1/sqrt(fan_in))")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_option("--route-skew", o->route_skew,
                  "Bias the routers so expert popularity roughly follows a Zipf law of this "
                  "exponent (0: uniform)")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer_json, "Embed this tokenizer.json instead of the built-in BPE");
  cmd->add_option("--tokenizer-pre", o->tokenizer_pre, "tokenizer.ggml.pre for an embedded tokenizer.json (qwen2, llama-bpe, deepseek-v3, gpt-4o, ...)");
  cmd->callback([o, out, type, embd_type] {
    auto t = type_from_name(*type);
    MOE_CHECK(t && traits(*t).supported, "synth: unsupported weight type '{}'", *type);
    o->type = *t;
    if (!embd_type->empty()) {
      auto et = type_from_name(*embd_type);
      MOE_CHECK(et && traits(*et).supported, "synth: unsupported weight type '{}'", *embd_type);
      o->embd_type = *et;
    }
    Timer timer;
    synthesize_model(*o, *out);
    fmt::print(stderr, "moe: wrote {} ({} {} layers, {} experts top-{}, {}) in {:.1f} s\n", *out,
               o->arch, o->n_layer, o->n_expert, o->n_expert_used, type_name(o->type), timer.seconds());
  });
}

MOE_REGISTER_COMMAND(synth, register_synth_command);

}  // namespace moe::tools
