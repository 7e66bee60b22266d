// A loaded model: its config and zero-copy views of its weights in the mapped
// GGUF file. load_model() binds every tensor the architecture needs and checks
// its type and shape against the config before anything runs.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "model/config.h"

namespace moe::gguf {
class File;
}

namespace moe {

// A weight tensor view. ne[0] is the contiguous dimension (ggml order); a 3-D
// expert tensor is [ne0 = n_in, ne1 = n_out, ne2 = n_expert].
struct Tensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  int64_t ne[4] = {1, 1, 1, 1};
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;     // bytes per row of ne[0] elements
  size_t matrix_bytes = 0;  // bytes per ne[0] x ne[1] slice (one expert)

  bool present() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  const uint8_t* matrix(int64_t e) const { return data + static_cast<size_t>(e) * matrix_bytes; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }

  // Packed copy for the int8 kernels (ops/pack.h), owned by the Model; nullptr
  // when the tensor is multiplied as stored. `data` keeps pointing at the file.
  const uint8_t* packed = nullptr;
  size_t packed_matrix_bytes = 0;  // bytes per packed ne[0] x ne[1] slice
  const uint8_t* packed_matrix(int64_t e) const {
    return packed + static_cast<size_t>(e) * packed_matrix_bytes;
  }
};

struct LayerWeights {
  Tensor attn_norm;                        // [n_embd]
  Tensor wq, wk, wv;                       // [n_embd, n_head*head_dim], [n_embd, n_head_kv*head_dim] x2
  Tensor bq, bk, bv;                       // biases (qwen2moe, gpt-oss)
  Tensor wo;                               // [n_head*head_dim_v, n_embd]
  Tensor bo;                               // [n_embd] (gpt-oss)
  Tensor sinks;                            // [n_head] attention sink logits (gpt-oss)
  // MLA (deepseek2): q = wq_b . norm(wq_a . x) (or wq . x), kv_a = wkv_a . x = [c | k_pe]
  Tensor wq_a, q_a_norm, wq_b;             // [n_embd, q_lora], [q_lora], [q_lora, n_head*(nope+rope)]
  Tensor wkv_a, kv_a_norm;                 // [n_embd, kv_lora+rope], [kv_lora]
  Tensor wk_b;                             // [nope, kv_lora, n_head]: q_nope -> latent (absorbed)
  Tensor wv_b;                             // [kv_lora, v_head, n_head]: latent -> v
  Tensor q_norm, k_norm;                   // [head_dim] per head, or [n_head*head_dim] full
  Tensor ffn_norm;                         // [n_embd]
  Tensor ffn_gate, ffn_up, ffn_down;       // dense: [n_embd, n_ff] x2, [n_ff, n_embd]
  Tensor gate_inp;                         // router [n_embd, n_expert]
  Tensor gate_inp_b;                       // router bias [n_expert] (gpt-oss)
  Tensor exp_probs_b;                      // selection-only score bias [n_expert] (DeepSeek-V3)
  Tensor gate_exps_b, up_exps_b, down_exps_b;  // expert biases [n_ff_exp, n_expert] x2, [n_embd, n_expert]
  Tensor gate_exps, up_exps, down_exps;    // [n_embd, n_ff_exp, n_expert] x2, [n_ff_exp, n_embd, n_expert]
  Tensor gate_shexp, up_shexp, down_shexp; // shared expert [n_embd, n_ff_shexp] x2, [n_ff_shexp, n_embd]
  Tensor gate_inp_shexp;                   // [n_embd] (qwen2moe shared-expert gate)
};

struct Model {
  ModelConfig cfg;
  std::shared_ptr<const gguf::File> file;
  Tensor tok_embd;     // [n_embd, n_vocab]
  Tensor output_norm;  // [n_embd]
  Tensor output;       // [n_embd, n_vocab] (tok_embd when tied)
  std::vector<LayerWeights> layers;

  int64_t bytes_total = 0;             // weight bytes in the file
  int64_t bytes_active_per_token = 0;  // weight bytes read per decoded token

  // Packed weights (one allocation; see pack_weights).
  std::shared_ptr<uint8_t> packed_storage;
  int64_t bytes_packed = 0;
  int64_t tensors_packed = 0;

  // Routed experts (the 3-D ffn_{gate,up,down}_exps tensors and nothing else).
  int64_t bytes_routed_experts = 0;  // their bytes in the file
  // Loaded for streaming (LoadOptions::stream_experts): the routed experts stay on
  // disk, unpacked and untouched; a Context reads them through its ExpertCache.
  bool experts_streamed = false;
  // Whether the kernels read routed experts in the packed layout (ops/pack.h)
  // where it applies: true when the loader packs, whether or not it streams.
  bool experts_packed = false;
  // Expert parallelism (model/expert_group.h): when expert_ranks > 1, pack_weights packed
  // only the routed experts that rank expert_rank owns (the others' packed slices are
  // never written nor resident), and only a Context in a matching group may run it.
  int expert_rank = 0, expert_ranks = 1;
};

struct LoadOptions {
  // Repack the weight matrices whose type has a packed layout (ops/pack.h) when
  // the AVX-512 kernels are active. MOE_PACK=0 in the environment turns it off.
  bool pack = true;
  // Called while packing with (bytes done, bytes total); may be empty.
  std::function<void(int64_t, int64_t)> progress;
  // Leave the routed experts on disk (not packed, their mapped pages never read):
  // a Context with ContextOptions::mem_budget streams them (model/expert_cache.h).
  bool stream_experts = false;
  // Expert parallelism: pack only the routed experts this rank owns (Model::expert_rank).
  int expert_rank = 0, expert_ranks = 1;
};

std::shared_ptr<Model> load_model(const std::string& path, const LoadOptions& opts = {});
std::shared_ptr<Model> load_model(std::shared_ptr<const gguf::File> file,
                                  const LoadOptions& opts = {});

// Packs every packable weight matrix of m (all but the token embedding, and the
// routed experts when m.experts_streamed) into one allocation and points Tensor::packed at it. Returns the number of tensors packed.
// load_model calls it unless opts.pack is false.
// Whether load_model packs by default: the AVX-512 kernels are active and MOE_PACK != 0.
bool packing_enabled();
int64_t pack_weights(Model& m, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace moe
