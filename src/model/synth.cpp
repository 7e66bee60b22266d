// Synthesizer: random normal weights (never zeros) in the tensor layout and with
// the metadata keys that llama.cpp's GGUF files use for each architecture.
#include "model/synth.h"

#include <algorithm>
#include <functional>
#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/synth_vocab.h"
#include "ops/quant.h"

namespace moe {
namespace {

// Fast normal generator: splitmix64 + Box-Muller, deterministic for a seed.
class Normal {
 public:
  explicit Normal(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(bits() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(bits() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(2 * M_PI * u2));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(2 * M_PI * u2));
  }

 private:
  uint64_t bits() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
  float spare_ = 0;
  bool has_spare_ = false;
};

struct Builder {
  const SynthOptions& o;
  gguf::Writer& w;
  Normal rng;

  // A matrix/3-D tensor [ne0 = fan_in, ne1, ne2] of type t, N(0, std) or N(0, 1/fan_in).
  // Rows that the type's blocks do not divide fall back to q8_0 or f32, as
  // llama-quantize does.
  // tweak(r, row) may change row r (floats) before it is rounded.
  void matrix(const std::string& name, std::vector<int64_t> ne, GgmlType t,
              const std::function<void(int64_t, float*)>& tweak = {}) {
    const int64_t n_in = ne[0];
    int64_t rows = 1;
    for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
    if (n_in % traits(t).block_size != 0) t = n_in % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F32;
    const float sd = o.std > 0 ? o.std : static_cast<float>(1.0 / std::sqrt(double(n_in)));
    const size_t rb = row_bytes(t, n_in);
    std::vector<uint8_t> data(rb * rows);
    std::vector<float> row(n_in);
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = sd * rng.next();
      if (tweak) tweak(r, row.data());
      ops::quantize_row(t, row.data(), data.data() + r * rb, n_in);
    }
    w.add_tensor(name, t, ne, data);
  }
  // An f32 vector (or a stack of them, e.g. per-expert biases): base + scale * N(0, 1).
  void vec(const std::string& name, std::vector<int64_t> ne, float base, float scale) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = base + scale * rng.next();
    w.add_tensor(name, GgmlType::F32, ne,
                 {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
  }
  void vec(const std::string& name, int64_t n, float base, float scale) { vec(name, std::vector<int64_t>{n}, base, scale); }
};

}  // namespace

void synthesize_model(const SynthOptions& o, const std::string& path) {
  const std::string& a = o.arch;
  const bool known = a == "llama" || a == "qwen3" || a == "qwen3moe" || a == "olmoe" ||
                     a == "qwen2moe" || a == "gpt-oss" || a == "deepseek2";
  MOE_CHECK(known, "synth: unknown architecture '{}' (llama, qwen3, qwen3moe, olmoe, qwen2moe, "
            "gpt-oss, deepseek2)", a);
  const bool mla = a == "deepseek2", oss = a == "gpt-oss";
  const bool moe = o.n_expert > 0;
  MOE_CHECK(!(a == "qwen3" && moe), "synth: qwen3 is dense; use qwen3moe for experts");
  MOE_CHECK(a == "llama" || a == "qwen3" || moe, "synth: {} needs --experts > 0", a);
  MOE_CHECK(!moe || (o.n_expert_used >= 1 && o.n_expert_used <= o.n_expert),
            "synth: top-k {} must be in 1..{}", o.n_expert_used, o.n_expert);
  MOE_CHECK(o.n_head > 0 && o.n_head_kv > 0 && o.n_head % o.n_head_kv == 0,
            "synth: heads {} must be a multiple of kv heads {}", o.n_head, o.n_head_kv);
  MOE_CHECK(o.head_dim % 2 == 0 && o.head_dim > 0, "synth: head_dim {} must be even", o.head_dim);

  SynthVocab vocab = o.tokenizer_json.empty()
                         ? builtin_bpe_vocab(o.n_vocab)
                         : vocab_from_tokenizer_json(o.tokenizer_json, o.tokenizer_pre.empty()
                                                                           ? "default"
                                                                           : o.tokenizer_pre);
  if (!o.chat_template.empty()) vocab.chat_template = o.chat_template;
  const int64_t V = static_cast<int64_t>(vocab.tokens.size());

  gguf::Writer w;
  using gguf::Value;
  auto k = [&](const char* s) { return a + "." + s; };
  w.set("general.architecture", Value::str(a));
  w.set("general.name", Value::str("moe-synth-" + a));
  w.set("general.file_type", Value::u32(0));
  w.set(k("context_length"), Value::u32(static_cast<uint32_t>(o.n_ctx_train)));
  w.set(k("embedding_length"), Value::u32(static_cast<uint32_t>(o.n_embd)));
  w.set(k("block_count"), Value::u32(static_cast<uint32_t>(o.n_layer)));
  w.set(k("attention.head_count"), Value::u32(static_cast<uint32_t>(o.n_head)));
  w.set(k("attention.head_count_kv"), Value::u32(static_cast<uint32_t>(o.n_head_kv)));
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  const int64_t R = mla ? o.qk_rope : o.head_dim, Nn = o.head_dim - R;
  const int64_t Vh = mla ? (o.v_head > 0 ? o.v_head : Nn) : o.head_dim;
  if (mla) {  // the absorbed layout current llama.cpp writes
    MOE_CHECK(Nn > 0 && R % 2 == 0, "synth: deepseek2 head_dim {} must exceed the even rope dims {}",
              o.head_dim, R);
    w.set(k("attention.head_count_kv"), u32(1));
    w.set(k("attention.key_length"), u32(o.kv_lora_rank + R));
    w.set(k("attention.value_length"), u32(o.kv_lora_rank));
    w.set(k("attention.key_length_mla"), u32(o.head_dim));
    w.set(k("attention.value_length_mla"), u32(Vh));
    if (o.q_lora_rank > 0) w.set(k("attention.q_lora_rank"), u32(o.q_lora_rank));
    w.set(k("attention.kv_lora_rank"), u32(o.kv_lora_rank));
    w.set(k("leading_dense_block_count"), u32(o.n_dense_lead));
    w.set(k("expert_shared_count"), u32(o.n_expert_shared));
    w.set(k("expert_weights_scale"), Value::f32(o.routed_scale));
    w.set(k("expert_weights_norm"), Value::boolean(true));
    w.set(k("expert_gating_func"), u32(2));
    w.set(k("expert_group_count"), u32(o.n_group));
    w.set(k("expert_group_used_count"), u32(o.n_group_used));
  } else {
    w.set(k("attention.key_length"), u32(o.head_dim));
    w.set(k("attention.value_length"), u32(o.head_dim));
  }
  if (oss) w.set(k("attention.sliding_window"), u32(o.n_swa > 0 ? o.n_swa : 8));
  if (o.yarn_factor > 1.0f) {
    w.set(k("rope.scaling.type"), Value::str("yarn"));
    w.set(k("rope.scaling.factor"), Value::f32(o.yarn_factor));
    w.set(k("rope.scaling.original_context_length"), u32(o.n_ctx_train));
    if (mla) w.set(k("rope.scaling.yarn_log_multiplier"), Value::f32(0.1f));
  }
  w.set(k("attention.layer_norm_rms_epsilon"), Value::f32(o.rms_eps));
  w.set(k("rope.freq_base"), Value::f32(o.rope_base));
  w.set(k("rope.dimension_count"), u32(R));
  w.set(k("vocab_size"), Value::u32(static_cast<uint32_t>(V)));
  const int64_t shexp = a == "qwen2moe" ? (o.n_ff_shexp > 0 ? o.n_ff_shexp : 2 * o.n_ff_exp) : 0;
  if (moe) {
    w.set(k("expert_count"), Value::u32(static_cast<uint32_t>(o.n_expert)));
    w.set(k("expert_used_count"), Value::u32(static_cast<uint32_t>(o.n_expert_used)));
    w.set(k("expert_feed_forward_length"), Value::u32(static_cast<uint32_t>(o.n_ff_exp)));
    w.set(k("feed_forward_length"), Value::u32(static_cast<uint32_t>(mla ? o.n_ff : o.n_ff_exp)));
    if (shexp) w.set(k("expert_shared_feed_forward_length"), Value::u32(static_cast<uint32_t>(shexp)));
  } else {
    w.set(k("feed_forward_length"), Value::u32(static_cast<uint32_t>(o.n_ff)));
  }
  w.set("tokenizer.ggml.model", Value::str(vocab.model));
  w.set("tokenizer.ggml.pre", Value::str(vocab.pre));
  w.set("tokenizer.ggml.tokens", Value::strings(vocab.tokens));
  w.set("tokenizer.ggml.token_type", Value::i32s(vocab.types));
  w.set("tokenizer.ggml.merges", Value::strings(vocab.merges));
  if (vocab.bos >= 0) w.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(vocab.bos)));
  if (vocab.eos >= 0) w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(vocab.eos)));
  if (vocab.pad >= 0) w.set("tokenizer.ggml.padding_token_id", Value::u32(static_cast<uint32_t>(vocab.pad)));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(vocab.add_bos));
  if (!vocab.chat_template.empty()) w.set("tokenizer.chat_template", Value::str(vocab.chat_template));

  Builder b{o, w, Normal(o.seed)};
  const int64_t E = o.n_embd, H = o.n_head, Hkv = o.n_head_kv, D = o.head_dim;
  const GgmlType t = o.type;
  // Skewed routing (SynthOptions::route_skew): channel 0 of every embedding row is
  // kSkewChannel times the weights' scale, i.e. about kSkewChannel after rms_norm.
  constexpr float kSkewChannel = 4.0f;
  const float embd_sd = o.std > 0 ? o.std : static_cast<float>(1.0 / std::sqrt(double(E)));
  std::function<void(int64_t, float*)> skew_embd;
  if (o.route_skew > 0) skew_embd = [&](int64_t, float* row) { row[0] = kSkewChannel * embd_sd; };
  b.matrix("token_embd.weight", {E, V}, o.embd_type, skew_embd);
  for (int64_t il = 0; il < o.n_layer; ++il) {
    auto n = [&](const char* s) { return "blk." + std::to_string(il) + "." + s; };
    b.vec(n("attn_norm.weight"), E, 1.0f, 0.2f);
    if (mla) {
      if (o.q_lora_rank > 0) {
        b.matrix(n("attn_q_a.weight"), {E, o.q_lora_rank}, t);
        b.vec(n("attn_q_a_norm.weight"), o.q_lora_rank, 1.0f, 0.2f);
        b.matrix(n("attn_q_b.weight"), {o.q_lora_rank, H * D}, t);
      } else {
        b.matrix(n("attn_q.weight"), {E, H * D}, t);
      }
      b.matrix(n("attn_kv_a_mqa.weight"), {E, o.kv_lora_rank + R}, t);
      b.vec(n("attn_kv_a_norm.weight"), o.kv_lora_rank, 1.0f, 0.2f);
      b.matrix(n("attn_k_b.weight"), {Nn, o.kv_lora_rank, H}, t);
      b.matrix(n("attn_v_b.weight"), {o.kv_lora_rank, Vh, H}, t);
      b.matrix(n("attn_output.weight"), {H * Vh, E}, t);
    } else {
      b.matrix(n("attn_q.weight"), {E, H * D}, t);
      b.matrix(n("attn_k.weight"), {E, Hkv * D}, t);
      b.matrix(n("attn_v.weight"), {E, Hkv * D}, t);
      b.matrix(n("attn_output.weight"), {H * D, E}, t);
    }
    if (a == "qwen2moe" || oss) {
      b.vec(n("attn_q.bias"), H * D, 0.0f, 0.2f);
      b.vec(n("attn_k.bias"), Hkv * D, 0.0f, 0.2f);
      b.vec(n("attn_v.bias"), Hkv * D, 0.0f, 0.2f);
    }
    if (oss) {
      b.vec(n("attn_output.bias"), E, 0.0f, 0.2f);
      b.vec(n("attn_sinks.weight"), H, 0.5f, 1.0f);
    }
    if (a == "qwen3" || a == "qwen3moe") {
      b.vec(n("attn_q_norm.weight"), D, 1.0f, 0.2f);
      b.vec(n("attn_k_norm.weight"), D, 1.0f, 0.2f);
    } else if (a == "olmoe") {
      b.vec(n("attn_q_norm.weight"), H * D, 1.0f, 0.2f);
      b.vec(n("attn_k_norm.weight"), Hkv * D, 1.0f, 0.2f);
    }
    b.vec(n(oss ? "post_attention_norm.weight" : "ffn_norm.weight"), E, 1.0f, 0.2f);
    if (!moe || (mla && il < o.n_dense_lead)) {
      b.matrix(n("ffn_gate.weight"), {E, o.n_ff}, t);
      b.matrix(n("ffn_up.weight"), {E, o.n_ff}, t);
      b.matrix(n("ffn_down.weight"), {o.n_ff, E}, t);
      continue;
    }
    std::function<void(int64_t, float*)> skew_router;
    std::vector<int64_t> rank(o.n_expert);
    if (o.route_skew > 0) {
      // Logit noise of a router row over a unit-rms input: sd * sqrt(E).
      const double noise = (o.std > 0 ? o.std : 1.0 / std::sqrt(double(E))) * std::sqrt(double(E));
      for (int64_t e = 0; e < o.n_expert; ++e) rank[e] = e;
      std::mt19937_64 perm(o.seed * 1000003 + static_cast<uint64_t>(il));
      std::shuffle(rank.begin(), rank.end(), perm);
      skew_router = [&, noise](int64_t e, float* row) {
        row[0] = static_cast<float>(-o.route_skew * std::log(double(rank[e] + 1)) * noise / kSkewChannel);
      };
    }
    b.matrix(n("ffn_gate_inp.weight"), {E, o.n_expert}, GgmlType::F32, skew_router);
    if (oss) b.vec(n("ffn_gate_inp.bias"), o.n_expert, 0.0f, 0.2f);
    if (mla) b.vec(n("exp_probs_b.bias"), o.n_expert, 0.0f, 0.1f);
    b.matrix(n("ffn_gate_exps.weight"), {E, o.n_ff_exp, o.n_expert}, t);
    b.matrix(n("ffn_up_exps.weight"), {E, o.n_ff_exp, o.n_expert}, t);
    b.matrix(n("ffn_down_exps.weight"), {o.n_ff_exp, E, o.n_expert}, t);
    if (oss) {
      b.vec(n("ffn_gate_exps.bias"), {o.n_ff_exp, o.n_expert}, 0.0f, 0.2f);
      b.vec(n("ffn_up_exps.bias"), {o.n_ff_exp, o.n_expert}, 0.0f, 0.2f);
      b.vec(n("ffn_down_exps.bias"), {E, o.n_expert}, 0.0f, 0.2f);
    }
    if (mla && o.n_expert_shared > 0) {
      const int64_t S = o.n_ff_exp * o.n_expert_shared;
      b.matrix(n("ffn_gate_shexp.weight"), {E, S}, t);
      b.matrix(n("ffn_up_shexp.weight"), {E, S}, t);
      b.matrix(n("ffn_down_shexp.weight"), {S, E}, t);
    }
    if (shexp) {
      b.vec(n("ffn_gate_inp_shexp.weight"), E, 0.0f, 1.0f / std::sqrt(float(E)));
      b.matrix(n("ffn_gate_shexp.weight"), {E, shexp}, t);
      b.matrix(n("ffn_up_shexp.weight"), {E, shexp}, t);
      b.matrix(n("ffn_down_shexp.weight"), {shexp, E}, t);
    }
  }
  b.vec("output_norm.weight", E, 1.0f, 0.2f);
  b.matrix("output.weight", {E, V}, o.embd_type);
  w.write(path);
}

}  // namespace moe
