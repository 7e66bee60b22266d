// Parameter layout (GGUF names and shapes, as src/model/synth.cpp writes a
// qwen3moe file) and deterministic initialisation.
#include "train/params.h"

#include <cmath>
#include <random>

#include "base/error.h"

namespace moe::train {

ParamLayout make_layout(const ModelShape& s) {
  MOE_CHECK(s.n_vocab > 0 && s.n_embd > 0 && s.n_layer > 0 && s.n_ctx > 0,
            "train: vocab {}, embd {}, layers {}, ctx {} must be positive", s.n_vocab, s.n_embd,
            s.n_layer, s.n_ctx);
  MOE_CHECK(s.n_head > 0 && s.n_head_kv > 0 && s.n_head % s.n_head_kv == 0,
            "train: heads {} must be a positive multiple of kv heads {}", s.n_head, s.n_head_kv);
  MOE_CHECK(s.head_dim > 0 && s.head_dim % 2 == 0, "train: head_dim {} must be even", s.head_dim);
  MOE_CHECK(s.n_expert >= 1 && s.n_expert_used >= 1 && s.n_expert_used <= s.n_expert,
            "train: top-k {} must be in 1..{} (experts)", s.n_expert_used, s.n_expert);
  MOE_CHECK(s.n_ff_exp > 0 && s.n_ff_shexp >= 0, "train: expert width {} must be positive", s.n_ff_exp);
  ParamLayout l;
  l.shape = s;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    ParamTensor t{std::move(name), std::move(shape), l.n_params, 1, decay};
    for (int64_t d : t.shape) t.size *= static_cast<size_t>(d);
    l.n_params += t.size;
    l.tensors.push_back(std::move(t));
    return static_cast<int>(l.tensors.size()) - 1;
  };
  const int64_t E = s.n_embd, H = s.n_head, Hk = s.n_head_kv, D = s.head_dim, X = s.n_expert;
  const int64_t F = s.n_ff_exp, Sh = s.n_ff_shexp;
  l.tok_embd = add("token_embd.weight", {s.n_vocab, E}, false);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    auto n = [&](const char* x) { return "blk." + std::to_string(il) + "." + x; };
    LayerParams p{};
    p.attn_norm = add(n("attn_norm.weight"), {E}, false);
    p.wq = add(n("attn_q.weight"), {H * D, E}, true);
    p.wk = add(n("attn_k.weight"), {Hk * D, E}, true);
    p.wv = add(n("attn_v.weight"), {Hk * D, E}, true);
    p.wo = add(n("attn_output.weight"), {E, H * D}, true);
    p.q_norm = add(n("attn_q_norm.weight"), {D}, false);
    p.k_norm = add(n("attn_k_norm.weight"), {D}, false);
    p.ffn_norm = add(n("ffn_norm.weight"), {E}, false);
    p.router = add(n("ffn_gate_inp.weight"), {X, E}, true);
    p.gate = add(n("ffn_gate_exps.weight"), {X, F, E}, true);
    p.up = add(n("ffn_up_exps.weight"), {X, F, E}, true);
    p.down = add(n("ffn_down_exps.weight"), {X, E, F}, true);
    if (Sh > 0) {
      p.gate_sh = add(n("ffn_gate_shexp.weight"), {Sh, E}, true);
      p.up_sh = add(n("ffn_up_shexp.weight"), {Sh, E}, true);
      p.down_sh = add(n("ffn_down_shexp.weight"), {E, Sh}, true);
    }
    l.layers.push_back(p);
  }
  l.output_norm = add("output_norm.weight", {E}, false);
  l.output = add("output.weight", {s.n_vocab, E}, true);
  const int64_t per_layer_dense = 2 * E + H * D * E * 2 + Hk * D * E * 2 + 2 * D + X * E + 3 * Sh * E;
  l.n_active = s.n_layer * (per_layer_dense + s.n_expert_used * 3 * F * E) + 2 * s.n_vocab * E + E;
  return l;
}

template <typename T>
void init_params(const ParamLayout& l, std::vector<T>& w, uint64_t seed) {
  w.assign(l.n_params, T(0));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  const double out_scale = 1.0 / std::sqrt(2.0 * double(l.shape.n_layer));
  for (const ParamTensor& t : l.tensors) {
    T* p = w.data() + t.offset;
    if (t.shape.size() == 1) {
      for (size_t i = 0; i < t.size; ++i) p[i] = T(1);
      continue;
    }
    const bool is_out = t.name.find("attn_output") != std::string::npos ||
                        t.name.find("ffn_down") != std::string::npos;
    const double sd = 0.02 * (is_out ? out_scale : 1.0);
    for (size_t i = 0; i < t.size; ++i) p[i] = static_cast<T>(sd * nd(rng));
  }
}

template void init_params<float>(const ParamLayout&, std::vector<float>&, uint64_t);
template void init_params<double>(const ParamLayout&, std::vector<double>&, uint64_t);

}  // namespace moe::train
