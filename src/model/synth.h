// The model synthesizer: writes random-weight GGUF models of any supported
// architecture, size and weight type, with an embedded byte-level BPE vocabulary
// (trained on a built-in English text) or a real tokenizer from a tokenizer.json.
// Tests and benchmarks use it; `moe synth` exposes it on the command line.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "gguf/types.h"

namespace moe {

struct SynthOptions {
  std::string arch = "qwen3moe";  // llama | qwen3 | qwen3moe | olmoe | qwen2moe | gpt-oss | deepseek2
  int64_t n_layer = 2;
  int64_t n_embd = 128;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t head_dim = 32;
  int64_t n_vocab = 512;
  int64_t n_ff = 256;          // dense FFN width (dense models)
  int64_t n_expert = 8;        // 0: dense
  int64_t n_expert_used = 2;
  int64_t n_ff_exp = 64;
  int64_t n_ff_shexp = 0;      // qwen2moe shared expert width (default 2 * n_ff_exp)
  int64_t n_ctx_train = 4096;
  float rope_base = 10000.0f;
  float yarn_factor = 0.0f;        // > 1: YaRN rope scaling with this factor
  // gpt-oss
  int64_t n_swa = 0;               // sliding window of the even layers (gpt-oss; default 8)
  // deepseek2 (MLA + group-limited routing)
  int64_t q_lora_rank = 0;         // 0: direct q projection
  int64_t kv_lora_rank = 64;
  int64_t qk_rope = 16;            // rotary dims; head_dim is qk_nope + qk_rope
  int64_t v_head = 0;              // default head_dim - qk_rope
  int64_t n_dense_lead = 1;
  int64_t n_expert_shared = 1;
  int64_t n_group = 1, n_group_used = 1;
  float routed_scale = 2.5f;
  float rms_eps = 1e-6f;
  GgmlType type = GgmlType::F32;   // type of the 2-D/3-D weight matrices
  GgmlType embd_type = GgmlType::F32;  // token embedding and lm_head (F32 unless set)
  float std = 0.02f;               // N(0, std) for matrices; <= 0: N(0, 1/fan_in)
  uint64_t seed = 1;
  // > 0: routers biased so that expert popularity roughly follows a Zipf law of
  // this exponent (a random permutation of the experts per layer): every token
  // embedding carries a constant channel 0, and router row e gets a weight on it
  // of -S ln(rank_e + 1) times the logit noise, so that expert's logit is shifted
  // by that much. The shift fades with depth as the residual stream grows;
  // `moe bench --json` reports the measured popularity.
  float route_skew = 0.0f;
  std::string tokenizer_json;      // empty: built-in byte-level BPE
  std::string tokenizer_pre;       // tokenizer.ggml.pre when importing (guessed if empty)
  std::string chat_template;       // optional tokenizer.chat_template
  // Progress callback for large files: (bytes written so far, total bytes).
  std::function<void(int64_t, int64_t)> progress;
};

// Writes the model to `path`. Throws moe::Error on bad options.
void synthesize_model(const SynthOptions& opts, const std::string& path);

}  // namespace moe
