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
