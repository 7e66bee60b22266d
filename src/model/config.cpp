// The table from GGUF metadata keys to ModelConfig, one entry per architecture.
// Keys are the ones llama.cpp writes: "<arch>.block_count", "<arch>.expert_count", ...
#include "model/config.h"

#include <cmath>
#include <string_view>

#include "base/error.h"
#include "gguf/gguf.h"

namespace moe {

const char* supported_architectures() {
  return "llama, qwen3, qwen3moe, olmoe, qwen2moe, deepseek2, gpt-oss";
}

namespace {

struct ArchFlags {
  std::string_view name;
  RopeType rope;
  QkNorm qk_norm;
  bool qkv_bias;
  bool norm_topk_default;
  bool shexp_gate;
};

constexpr ArchFlags kArchs[] = {
    // name       rope             qk norm            bias   renorm shexp-gate
    {"llama", RopeType::norm, QkNorm::none, false, true, false},
    {"qwen3", RopeType::neox, QkNorm::per_head, false, true, false},
    {"qwen3moe", RopeType::neox, QkNorm::per_head, false, true, false},
    {"olmoe", RopeType::neox, QkNorm::full, false, false, false},
    {"qwen2moe", RopeType::neox, QkNorm::none, true, false, true},
    {"deepseek2", RopeType::norm, QkNorm::none, false, false, false},
    {"gpt-oss", RopeType::neox, QkNorm::none, true, false, false},
};

}  // namespace

ModelConfig config_from_gguf(const gguf::File& f) {
  ModelConfig c;
  c.arch = f.require_string("general.architecture");
  const ArchFlags* flags = nullptr;
  for (const auto& a : kArchs)
    if (a.name == c.arch) flags = &a;
  if (!flags)
    throw_error("{}: unknown architecture '{}' (general.architecture); supported: {}", f.path(),
                c.arch, supported_architectures());

  auto key = [&](std::string_view k) { return c.arch + "." + std::string(k); };
  auto req = [&](std::string_view k) { return f.require_int(key(k)); };
  auto opt = [&](std::string_view k, int64_t def) { return f.get_int(key(k)).value_or(def); };
  auto optf = [&](std::string_view k, double def) { return f.get_float(key(k)).value_or(def); };

  c.n_embd = req("embedding_length");
  c.n_layer = req("block_count");
  c.n_ctx_train = opt("context_length", 4096);
  c.n_head = req("attention.head_count");
  c.n_head_kv = opt("attention.head_count_kv", c.n_head);
  MOE_CHECK(c.n_head > 0 && c.n_head_kv > 0 && c.n_head % c.n_head_kv == 0,
            "{}: attention.head_count {} must be a positive multiple of head_count_kv {}",
            f.path(), c.n_head, c.n_head_kv);
  c.head_dim = opt("attention.key_length", c.n_embd / c.n_head);
  c.head_dim_v = opt("attention.value_length", c.head_dim);
  c.rms_eps = static_cast<float>(optf("attention.layer_norm_rms_epsilon", 1e-6));
  c.rope_base = static_cast<float>(optf("rope.freq_base", 10000.0));
  c.n_rot = opt("rope.dimension_count", c.head_dim);
  c.rope_type = flags->rope;
  c.qk_norm = flags->qk_norm;
  c.qkv_bias = flags->qkv_bias;

  c.n_expert = opt("expert_count", 0);
  c.n_expert_used = opt("expert_used_count", 0);
  c.n_ff = opt("feed_forward_length", 0);
  if (c.is_moe()) {
    MOE_CHECK(c.n_expert_used > 0 && c.n_expert_used <= c.n_expert,
              "{}: {} = {} must be in 1..{} (expert_count)", f.path(), key("expert_used_count"),
              c.n_expert_used, c.n_expert);
    c.n_ff_exp = opt("expert_feed_forward_length", c.n_ff);
    MOE_CHECK(c.n_ff_exp > 0, "{}: missing required key '{}'", f.path(),
              key("expert_feed_forward_length"));
    c.norm_topk = f.get_bool(key("expert_weights_norm")).value_or(flags->norm_topk_default);
    c.routed_scale = static_cast<float>(optf("expert_weights_scale", 1.0));
    if (c.routed_scale == 0.0f) c.routed_scale = 1.0f;
    c.n_ff_shexp = opt("expert_shared_feed_forward_length", 0);
    c.shexp_gate = flags->shexp_gate;
  } else {
    MOE_CHECK(c.n_ff > 0, "{}: missing required key '{}' (dense model without experts)",
              f.path(), key("feed_forward_length"));
  }

  const auto* tok = f.get_array("tokenizer.ggml.tokens");
  c.n_vocab = opt("vocab_size", tok ? static_cast<int64_t>(tok->items.size()) : 0);
  if (c.n_vocab == 0) {
    if (const auto* t = f.tensor("token_embd.weight")) c.n_vocab = t->ne[1];
  }

  if (c.arch == "gpt-oss") {
    c.attn_out_bias = c.attn_sinks = true;
    c.n_swa = opt("attention.sliding_window", 0);
    c.gating = Gating::softmax_selected;
    c.router_bias = c.expert_bias = true;
    c.ffn_act = FfnAct::swiglu_clamped;
    c.ffn_norm_post_attention = true;
  }
  if (c.arch == "deepseek2") {
    c.attn = AttnKind::mla;
    c.q_lora_rank = opt("attention.q_lora_rank", 0);
    c.kv_lora_rank = req("attention.kv_lora_rank");
    // Current GGUFs store the absorbed layout: key_length = kv_lora_rank + rope dims,
    // with the per-head sizes under key_length_mla / value_length_mla.
    const int64_t k_mla = opt("attention.key_length_mla", c.head_dim);
    c.v_head = opt("attention.value_length_mla", c.head_dim_v);
    c.qk_nope = k_mla - c.n_rot;
    c.head_dim = k_mla;  // q/k per head: nope + rope
    c.head_dim_v = c.v_head;
    c.n_head_kv = c.n_head;
    MOE_CHECK(c.qk_nope > 0 && c.kv_lora_rank > 0 && c.v_head > 0,
              "{}: inconsistent MLA sizes: key_length_mla {} rope {} kv_lora_rank {} value_length_mla {}",
              f.path(), k_mla, c.n_rot, c.kv_lora_rank, c.v_head);
    c.n_dense_lead = opt("leading_dense_block_count", 0);
    const int64_t gating = opt("expert_gating_func", 1);
    MOE_CHECK(gating == 1 || gating == 2, "{}: {} = {} (expected 1 softmax or 2 sigmoid)", f.path(),
              key("expert_gating_func"), gating);
    c.gating = gating == 2 ? Gating::sigmoid : Gating::softmax;
    const int64_t n_shared = opt("expert_shared_count", 0);
    c.n_ff_shexp = n_shared * c.n_ff_exp;
    c.n_group = opt("expert_group_count", 1);
    c.n_group_used = opt("expert_group_used_count", c.n_group);
    if (c.n_group <= 0) c.n_group = c.n_group_used = 1;
    MOE_CHECK(c.n_expert % c.n_group == 0 && c.n_group_used >= 1 && c.n_group_used <= c.n_group &&
                  c.n_expert_used <= c.n_group_used * (c.n_expert / c.n_group),
              "{}: expert groups {} (use {}) do not fit {} experts with top-{}", f.path(), c.n_group,
              c.n_group_used, c.n_expert, c.n_expert_used);
  }
  if (f.get_string(key("rope.scaling.type")).value_or("none") == "yarn") {
    c.yarn = true;
    const double factor = optf("rope.scaling.factor", 1.0);
    MOE_CHECK(factor >= 1.0, "{}: {} = {} must be >= 1", f.path(), key("rope.scaling.factor"), factor);
    c.rope_freq_scale = static_cast<float>(1.0 / factor);
    c.rope_n_ctx_orig = opt("rope.scaling.original_context_length", c.n_ctx_train);
    // gpt-oss scales cos/sin by 1 + 0.1 ln(factor); DeepSeek leaves them and scales
    // the attention logits by mscale^2 with mscale = 1 + yarn_log_multiplier * ln(factor).
    if (c.attn == AttnKind::mla) {
      const double mult = optf("rope.scaling.yarn_log_multiplier", 0.1);
      const double ms = 1.0 + mult * std::log(factor);
      c.attn_scale = static_cast<float>(ms * ms / std::sqrt(double(c.head_dim)));
    } else {
      c.rope_mscale = 1.0f + 0.1f * std::log(static_cast<float>(factor));
    }
  }
  if (c.attn_scale == 0.0f) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  auto positive = [&](int64_t v, std::string_view k) {
    MOE_CHECK(v > 0 && v < (int64_t{1} << 31), "{}: {} = {} is out of range", f.path(), key(k), v);
  };
  positive(c.n_embd, "embedding_length");
  positive(c.n_layer, "block_count");
  positive(c.head_dim, "attention.key_length");
  positive(c.n_vocab, "vocab_size");
  MOE_CHECK(c.n_rot > 0 && c.n_rot <= c.head_dim && c.n_rot % 2 == 0,
            "{}: {} = {} must be even and at most key_length {}", f.path(),
            key("rope.dimension_count"), c.n_rot, c.head_dim);
  MOE_CHECK(std::isfinite(c.rms_eps) && c.rms_eps > 0, "{}: {} must be positive", f.path(),
            key("attention.layer_norm_rms_epsilon"));
  return c;
}

}  // namespace moe
