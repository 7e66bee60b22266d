// Model configuration: one struct of hyper-parameters and flags covering every
// supported architecture family, filled from GGUF metadata by config_from_gguf().
// Architectures differ by flags here, not by code paths, wherever the math is the
// same (see docs/ARCHITECTURE.md for the flag table).
#pragma once
#include <cstdint>
#include <string>

namespace moe::gguf {
class File;
}

namespace moe {

enum class RopeType { norm, neox };       // pairs (2i, 2i+1) vs (i, i + d/2)
enum class QkNorm { none, per_head, full };  // RMSNorm of q/k: per head, or over the whole projection
enum class Gating { softmax, sigmoid, softmax_selected };  // softmax_selected: gpt-oss (softmax over the k selected logits)
enum class AttnKind { standard, mla };    // mla: DeepSeek multi-head latent attention
enum class FfnAct { swiglu, swiglu_clamped };  // clamped: gpt-oss (alpha 1.702, limit 7, up + 1)

struct ModelConfig {
  std::string arch;  // general.architecture
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ctx_train = 0;

  // Attention
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // key length
  int64_t head_dim_v = 0;
  float rms_eps = 1e-6f;
  float rope_base = 10000.0f;
  int64_t n_rot = 0;  // rotated dims per head
  RopeType rope_type = RopeType::neox;
  QkNorm qk_norm = QkNorm::none;
  bool qkv_bias = false;
  bool attn_out_bias = false;  // gpt-oss: bias after attn_output
  bool attn_sinks = false;     // gpt-oss: a learned per-head logit in every softmax
  int64_t n_swa = 0;           // sliding window (keys i - n_swa < j <= i) on even layers; 0: none
  AttnKind attn = AttnKind::standard;
  // MLA (DeepSeek-V2/V3, Kimi K2): q_lora_rank 0 means q is projected directly.
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope = 0, v_head = 0;  // qk_rope = n_rot

  // YaRN rope scaling (rope.scaling.type = yarn); freq_scale = 1 / factor.
  bool yarn = false;
  float rope_freq_scale = 1.0f;
  int64_t rope_n_ctx_orig = 0;
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;
  float rope_mscale = 1.0f;   // multiplies cos and sin (gpt-oss: 1 + 0.1 ln factor)
  float attn_scale = 0.0f;    // softmax scale of q.k; set from head dims (and mscale^2 for MLA)

  // Feed-forward. n_expert == 0: dense SwiGLU FFN of width n_ff.
  int64_t n_ff = 0;
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;
  Gating gating = Gating::softmax;
  bool norm_topk = false;      // renormalise the k weights to sum 1
  float routed_scale = 1.0f;   // multiply the routed weights (DeepSeek expert_weights_scale)
  int64_t n_ff_shexp = 0;      // shared expert width (0: none)
  bool shexp_gate = false;     // qwen2moe: shared expert output scaled by sigmoid(gate_inp_shexp . x)
  int64_t n_dense_lead = 0;    // DeepSeek: the first layers have a dense FFN of width n_ff
  int64_t n_group = 1, n_group_used = 1;  // group-limited top-k (DeepSeek-V3)
  bool router_bias = false;    // gpt-oss: ffn_gate_inp.bias
  bool expert_bias = false;    // gpt-oss: biases on the expert gate/up/down
  FfnAct ffn_act = FfnAct::swiglu;
  bool ffn_norm_post_attention = false;  // gpt-oss names the FFN norm post_attention_norm

  bool layer_is_moe(int64_t il) const { return is_moe() && il >= n_dense_lead; }
  bool layer_is_swa(int64_t il) const { return n_swa > 0 && il % 2 == 0; }

  bool is_moe() const { return n_expert > 0; }
  // Parameters touched per token and in total (computed from the tensors at load).
  int64_t n_params_total = 0;
  int64_t n_params_active = 0;
};

// Reads the hyper-parameters of `file` and sets the flags of its architecture.
// Throws moe::Error naming the file and key for a missing key, an unknown
// architecture or inconsistent values.
ModelConfig config_from_gguf(const gguf::File& file);

// Architectures this build can run.
const char* supported_architectures();

}  // namespace moe
