// `moe inspect MODEL`: architecture, hyper-parameters, tensors, and total vs
// active parameters per token (the activation ratio); with --ranks N, the weight
// memory of each rank when the routed experts are split over N MPI ranks.
#include <fmt/format.h>

#include <memory>

#include "dist/memory.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tools/commands.h"

namespace moe::tools {

// One line per metadata value; arrays show their length and first items.
static std::string show(const gguf::Value& v) {
  switch (v.type) {
    case gguf::ValueType::STRING: {
      std::string s = v.as_string();
      if (s.size() > 80) s = s.substr(0, 77) + "...";
      for (auto& c : s) if (c == '\n') c = ' ';
      return "\"" + s + "\"";
    }
    case gguf::ValueType::ARRAY: {
      const auto& a = v.as_array();
      std::string out = fmt::format("[{} x {}]", a.items.size(), gguf::value_type_name(a.elem_type));
      for (size_t i = 0; i < a.items.size() && i < 4; ++i) out += " " + show(a.items[i]);
      return out + (a.items.size() > 4 ? " ..." : "");
    }
    case gguf::ValueType::BOOL: return std::get<bool>(v.v) ? "true" : "false";
    case gguf::ValueType::FLOAT32:
    case gguf::ValueType::FLOAT64: return fmt::format("{}", v.as_float());
    default: return fmt::format("{}", v.as_int());
  }
}

static void inspect(const std::string& path, bool tensors, bool metadata, int ranks) {
  auto file = std::make_shared<const gguf::File>(gguf::File::open(path));
  fmt::print("file: {} ({:.2f} MB, GGUF v{}, {} tensors, {} metadata keys)\n", path,
             file->file_size() / 1e6, file->version(), file->tensors().size(),
             file->metadata().size());
  if (metadata)
    for (const auto& [k, v] : file->metadata()) fmt::print("  {} = {}\n", k, show(v));
  auto model = load_model(file, {.pack = false, .progress = {}});
  const ModelConfig& c = model->cfg;
  fmt::print("architecture: {}\n", c.arch);
  fmt::print("layers: {}  embedding: {}  vocab: {}  context (train): {}\n", c.n_layer, c.n_embd,
             c.n_vocab, c.n_ctx_train);
  fmt::print("attention: {} heads, {} kv heads, head dim {} (v {}), rope {} base {} dims {}, "
             "q/k norm {}, rms eps {}\n",
             c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v,
             c.rope_type == RopeType::neox ? "neox" : "norm", c.rope_base, c.n_rot,
             c.qk_norm == QkNorm::none ? "none" : (c.qk_norm == QkNorm::per_head ? "per-head" : "full"),
             c.rms_eps);
  if (c.attn == AttnKind::mla)
    fmt::print("latent attention (MLA): q rank {}, kv rank {}, per head {} nope + {} rope, v {}; "
               "cache {} floats/token/layer\n",
               c.q_lora_rank, c.kv_lora_rank, c.qk_nope, c.n_rot, c.v_head, c.kv_lora_rank + c.n_rot);
  if (c.n_swa > 0) fmt::print("sliding window {} on even layers\n", c.n_swa);
  if (c.attn_sinks) fmt::print("attention sinks: yes\n");
  if (c.yarn)
    fmt::print("rope scaling: YaRN factor {}, original context {}\n", 1.0f / c.rope_freq_scale,
               c.rope_n_ctx_orig);
  if (c.is_moe()) {
    if (c.n_dense_lead) fmt::print("leading dense layers: {} (ffn {})\n", c.n_dense_lead, c.n_ff);
    if (c.n_group > 1) fmt::print("expert groups: {}, {} used per token\n", c.n_group, c.n_group_used);
    fmt::print("experts: {} routed, top-{}, expert ffn {}, gating {}, renormalise {}, scale {}",
               c.n_expert, c.n_expert_used, c.n_ff_exp,
               c.gating == Gating::softmax ? "softmax" : (c.gating == Gating::sigmoid ? "sigmoid" : "softmax(top-k)"),
               c.norm_topk ? "yes" : "no", c.routed_scale);
    if (c.n_ff_shexp) fmt::print(", shared expert ffn {}{}", c.n_ff_shexp, c.shexp_gate ? " (gated)" : "");
    fmt::print("\n");
  } else {
    fmt::print("dense ffn: {}\n", c.n_ff);
  }
  fmt::print("parameters: total {} ({:.3f} M), active per token {} ({:.3f} M), activation ratio {:.2f}%\n",
             c.n_params_total, c.n_params_total / 1e6, c.n_params_active, c.n_params_active / 1e6,
             100.0 * c.n_params_active / c.n_params_total);
  fmt::print("weight bytes: total {:.2f} MB, active per token {:.2f} MB\n", model->bytes_total / 1e6,
             model->bytes_active_per_token / 1e6);
  if (ranks > 0) {
    const dist::RankMemory r = dist::rank_memory(*model, ranks);
    fmt::print("expert parallelism over {} ranks: non-expert weights {:.2f} MB (on every rank) + "
               "routed experts {:.2f} MB / {} = {:.2f} MB per rank (largest share {:.2f} MB)\n",
               ranks, r.non_expert_bytes / 1e6, r.expert_bytes / 1e6, ranks,
               (r.non_expert_bytes + r.expert_bytes / static_cast<double>(ranks)) / 1e6,
               r.max_rank_bytes() / 1e6);
    for (int i = 0; i < ranks && i < 64; ++i)  // the first 64 ranks
      fmt::print("  rank {}: {} bytes ({} non-expert + {} expert)\n", i,
                 r.non_expert_bytes + r.rank_expert_bytes[i], r.non_expert_bytes, r.rank_expert_bytes[i]);
  }
  if (tensors) {
    fmt::print("{:<36} {:<7} {:<24} {:>12}\n", "tensor", "type", "shape", "bytes");
    for (const auto& t : file->tensors()) {
      std::string shape;
      for (uint32_t i = 0; i < t.n_dims; ++i) shape += (i ? ", " : "") + std::to_string(t.ne[i]);
      fmt::print("{:<36} {:<7} [{:<22}] {:>12}\n", t.name, type_name(t.type), shape, t.nbytes);
    }
  }
}

static void register_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's architecture, hyper-parameters, tensors "
                                            "and total vs active parameters");
  auto path = std::make_shared<std::string>();
  auto no_tensors = std::make_shared<bool>(false);
  auto metadata = std::make_shared<bool>(false);
  auto ranks = std::make_shared<int>(0);
  cmd->add_option("model", *path, "GGUF model file")->required();
  cmd->add_flag("--no-tensors", *no_tensors, "Do not list tensors");
  cmd->add_flag("--metadata", *metadata, "Print every metadata key and value first");
  cmd->add_option("--ranks", *ranks, "Print the weight memory per rank with the routed experts "
                                     "split over this many MPI ranks")
      ->check(CLI::Range(1, 1 << 20));
  cmd->callback([=] { inspect(*path, !*no_tensors, *metadata, *ranks); });
}

MOE_REGISTER_COMMAND(inspect, register_inspect_command);

}  // namespace moe::tools
