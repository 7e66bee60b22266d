// Binds GGUF tensors to LayerWeights and validates types and shapes against the
// config: a wrong shape, a missing tensor or a type we cannot compute with is a
// load-time error naming the file, the tensor, the expected and the found value.
#include "model/model.h"

#include <fmt/ranges.h>

#include <vector>

#include "base/error.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "model/expert_cache.h"

namespace moe {
namespace {

class Binder {
 public:
  explicit Binder(const gguf::File& f) : f_(f) {}

  // Binds `name`, checking its shape is exactly `shape` (ggml order). Missing
  // tensors are an error unless optional.
  Tensor bind(const std::string& name, std::vector<int64_t> shape, bool optional = false) {
    const gguf::TensorInfo* ti = f_.tensor(name);
    if (!ti) {
      if (optional) return {};
      throw_error("{}: missing tensor '{}' (expected shape [{}])", f_.path(), name,
                  fmt::join(shape, ", "));
    }
    bool ok = ti->n_dims == shape.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = ti->ne[i] == shape[i];
    if (!ok) {
      std::vector<int64_t> found(ti->ne, ti->ne + ti->n_dims);
      throw_error("{}: tensor '{}' has shape [{}], expected [{}] from the hyper-parameters",
                  f_.path(), name, fmt::join(found, ", "), fmt::join(shape, ", "));
    }
    if (!traits(ti->type).supported)
      throw_error("{}: tensor '{}' has weight type {}, which moe does not support yet", f_.path(),
                  name, type_name(ti->type));
    Tensor t;
    t.name = name;
    t.type = ti->type;
    for (int i = 0; i < 4; ++i) t.ne[i] = ti->ne[i];
    t.data = static_cast<const uint8_t*>(ti->data);
    t.row_bytes = row_bytes(t.type, t.ne[0]);
    t.matrix_bytes = t.row_bytes * static_cast<size_t>(t.ne[1]);
    bound_bytes_ += static_cast<int64_t>(ti->nbytes);
    return t;
  }

  // Norms and biases are used as float vectors.
  Tensor bind_f32(const std::string& name, std::vector<int64_t> shape, bool optional = false) {
    Tensor t = bind(name, std::move(shape), optional);
    if (t.present() && t.type != GgmlType::F32)
      throw_error("{}: tensor '{}' has type {}, expected f32", f_.path(), name, type_name(t.type));
    return t;
  }

  int64_t bound_bytes() const { return bound_bytes_; }

 private:
  const gguf::File& f_;
  int64_t bound_bytes_ = 0;
};

int64_t tensor_bytes(const Tensor& t) {
  return t.present() ? static_cast<int64_t>(t.matrix_bytes) * t.ne[2] * t.ne[3] : 0;
}
int64_t tensor_params(const Tensor& t) {
  return t.present() ? t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3] : 0;
}

}  // namespace

std::shared_ptr<Model> load_model(const std::string& path, const LoadOptions& opts) {
  return load_model(std::make_shared<const gguf::File>(gguf::File::open(path)), opts);
}

std::shared_ptr<Model> load_model(std::shared_ptr<const gguf::File> file, const LoadOptions& opts) {
  auto m = std::make_shared<Model>();
  m->file = file;
  m->cfg = config_from_gguf(*file);
  ModelConfig& c = m->cfg;
  Binder b(*file);

  const int64_t E = c.n_embd, V = c.n_vocab, H = c.n_head, Hkv = c.n_head_kv;
  const int64_t D = c.head_dim, Dv = c.head_dim_v;
  m->tok_embd = b.bind("token_embd.weight", {E, V});
  m->output_norm = b.bind_f32("output_norm.weight", {E});
  m->output = b.bind("output.weight", {E, V}, /*optional=*/true);
  const bool tied = !m->output.present();
  if (tied) m->output = m->tok_embd;

  int64_t active = 0, total = 0;
  auto count = [&](const Tensor& t, bool per_token) {
    total += tensor_params(t);
    if (per_token) active += tensor_params(t);
  };
  int64_t active_bytes = 0;
  auto count_bytes = [&](const Tensor& t) { active_bytes += tensor_bytes(t); };

  m->layers.resize(c.n_layer);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = m->layers[il];
    auto n = [&](const char* s) { return fmt::format("blk.{}.{}", il, s); };
    L.attn_norm = b.bind_f32(n("attn_norm.weight"), {E});
    if (c.attn == AttnKind::mla) {
      const int64_t R = c.n_rot, Lk = c.kv_lora_rank, Dq = c.qk_nope + R;
      if (c.q_lora_rank > 0) {
        L.wq_a = b.bind(n("attn_q_a.weight"), {E, c.q_lora_rank});
        L.q_a_norm = b.bind_f32(n("attn_q_a_norm.weight"), {c.q_lora_rank});
        L.wq_b = b.bind(n("attn_q_b.weight"), {c.q_lora_rank, H * Dq});
      } else {
        L.wq = b.bind(n("attn_q.weight"), {E, H * Dq});
      }
      L.wkv_a = b.bind(n("attn_kv_a_mqa.weight"), {E, Lk + R});
      L.kv_a_norm = b.bind_f32(n("attn_kv_a_norm.weight"), {Lk});
      if (!file->tensor(n("attn_k_b.weight")) && file->tensor(n("attn_kv_b.weight")))
        throw_error("{}: this DeepSeek file has the combined attn_kv_b tensor of older converters; "
                    "re-convert it with a current llama.cpp (split attn_k_b / attn_v_b)", file->path());
      L.wk_b = b.bind(n("attn_k_b.weight"), {c.qk_nope, Lk, H});
      L.wv_b = b.bind(n("attn_v_b.weight"), {Lk, c.v_head, H});
      L.wo = b.bind(n("attn_output.weight"), {H * c.v_head, E});
    } else {
      L.wq = b.bind(n("attn_q.weight"), {E, H * D});
      L.wk = b.bind(n("attn_k.weight"), {E, Hkv * D});
      L.wv = b.bind(n("attn_v.weight"), {E, Hkv * Dv});
      L.wo = b.bind(n("attn_output.weight"), {H * Dv, E});
    }
    if (c.qkv_bias) {
      L.bq = b.bind_f32(n("attn_q.bias"), {H * D});
      L.bk = b.bind_f32(n("attn_k.bias"), {Hkv * D});
      L.bv = b.bind_f32(n("attn_v.bias"), {Hkv * Dv});
    }
    if (c.attn_out_bias) L.bo = b.bind_f32(n("attn_output.bias"), {E});
    if (c.attn_sinks) L.sinks = b.bind_f32(n("attn_sinks.weight"), {H});
    if (c.qk_norm == QkNorm::per_head) {
      L.q_norm = b.bind_f32(n("attn_q_norm.weight"), {D});
      L.k_norm = b.bind_f32(n("attn_k_norm.weight"), {D});
    } else if (c.qk_norm == QkNorm::full) {
      L.q_norm = b.bind_f32(n("attn_q_norm.weight"), {H * D});
      L.k_norm = b.bind_f32(n("attn_k_norm.weight"), {Hkv * D});
    }
    L.ffn_norm = b.bind_f32(n(c.ffn_norm_post_attention ? "post_attention_norm.weight" : "ffn_norm.weight"), {E});
    for (const Tensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo,
                            &L.sinks, &L.wq_a, &L.q_a_norm, &L.wq_b, &L.wkv_a, &L.kv_a_norm,
                            &L.wk_b, &L.wv_b, &L.q_norm, &L.k_norm, &L.ffn_norm}) {
      count(*t, true);
      count_bytes(*t);
    }

    if (!c.layer_is_moe(il)) {
      L.ffn_gate = b.bind(n("ffn_gate.weight"), {E, c.n_ff});
      L.ffn_up = b.bind(n("ffn_up.weight"), {E, c.n_ff});
      L.ffn_down = b.bind(n("ffn_down.weight"), {c.n_ff, E});
      for (const Tensor* t : {&L.ffn_gate, &L.ffn_up, &L.ffn_down}) {
        count(*t, true);
        count_bytes(*t);
      }
      continue;
    }
    const int64_t X = c.n_expert, F = c.n_ff_exp;
    L.gate_inp = b.bind_f32(n("ffn_gate_inp.weight"), {E, X});
    if (c.router_bias) L.gate_inp_b = b.bind_f32(n("ffn_gate_inp.bias"), {X});
    L.exp_probs_b = b.bind_f32(n("exp_probs_b.bias"), {X}, /*optional=*/true);
    if (c.expert_bias) {
      L.gate_exps_b = b.bind_f32(n("ffn_gate_exps.bias"), {F, X});
      L.up_exps_b = b.bind_f32(n("ffn_up_exps.bias"), {F, X});
      L.down_exps_b = b.bind_f32(n("ffn_down_exps.bias"), {E, X});
    }
    L.gate_exps = b.bind(n("ffn_gate_exps.weight"), {E, F, X});
    L.up_exps = b.bind(n("ffn_up_exps.weight"), {E, F, X});
    L.down_exps = b.bind(n("ffn_down_exps.weight"), {F, E, X});
    if (L.gate_exps.type != L.up_exps.type)
      throw_error("{}: {} and {} must have the same type (found {} and {})", file->path(),
                  L.gate_exps.name, L.up_exps.name, type_name(L.gate_exps.type),
                  type_name(L.up_exps.type));
    for (const Tensor* t : {&L.gate_inp, &L.gate_inp_b, &L.exp_probs_b}) {
      count(*t, true);
      count_bytes(*t);
    }
    for (const Tensor* t : {&L.gate_exps_b, &L.up_exps_b, &L.down_exps_b}) {
      total += tensor_params(*t);
      active += tensor_params(*t) / X * c.n_expert_used;
      active_bytes += tensor_bytes(*t) / X * c.n_expert_used;
    }
    for (const Tensor* t : {&L.gate_exps, &L.up_exps, &L.down_exps}) {
      m->bytes_routed_experts += tensor_bytes(*t);
      total += tensor_params(*t);
      active += tensor_params(*t) / X * c.n_expert_used;
      active_bytes += tensor_bytes(*t) / X * c.n_expert_used;
    }
    if (c.n_ff_shexp > 0) {
      const int64_t S = c.n_ff_shexp;
      L.gate_shexp = b.bind(n("ffn_gate_shexp.weight"), {E, S});
      L.up_shexp = b.bind(n("ffn_up_shexp.weight"), {E, S});
      L.down_shexp = b.bind(n("ffn_down_shexp.weight"), {S, E});
      if (c.shexp_gate) L.gate_inp_shexp = b.bind_f32(n("ffn_gate_inp_shexp.weight"), {E});
      for (const Tensor* t : {&L.gate_shexp, &L.up_shexp, &L.down_shexp, &L.gate_inp_shexp}) {
        count(*t, true);
        count_bytes(*t);
      }
    }
  }
  // Active parameters follow the usual convention (all but the unselected routed
  // experts, embedding included); active bytes count what a token reads: one
  // embedding row, and the lm_head whole.
  total += tensor_params(m->tok_embd) + tensor_params(m->output_norm);
  active += tensor_params(m->tok_embd) + tensor_params(m->output_norm);
  active_bytes += static_cast<int64_t>(m->tok_embd.row_bytes) + tensor_bytes(m->output_norm);
  if (!tied) {
    total += tensor_params(m->output);
    active += tensor_params(m->output);
  }
  active_bytes += tensor_bytes(m->output);

  c.n_params_total = total;
  c.n_params_active = active;
  m->bytes_total = b.bound_bytes();
  m->bytes_active_per_token = active_bytes;
  MOE_CHECK(opts.expert_ranks >= 1 && opts.expert_rank >= 0 && opts.expert_rank < opts.expert_ranks,
            "load: expert rank {} of {} is out of range", opts.expert_rank, opts.expert_ranks);
  m->experts_streamed = opts.stream_experts && c.is_moe();
  m->experts_packed = opts.pack && packing_enabled();
  if (m->experts_packed) {
    m->expert_rank = opts.expert_rank;
    m->expert_ranks = opts.expert_ranks;
  }
  protect_streamed_experts(*m);
  if (m->experts_packed) pack_weights(*m, opts.progress);
  return m;
}

}  // namespace moe
