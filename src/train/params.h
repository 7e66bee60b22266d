// Model shape and the flat parameter layout of the training model: every tensor
// has its GGUF name, its row-major shape (outermost first; GGUF ne is reversed),
// its offset in the flat buffer and whether weight decay applies to it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe::train {

struct ModelShape {
  int64_t n_vocab = 512;
  int64_t n_embd = 128;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t head_dim = 32;
  int64_t n_expert = 8;
  int64_t n_expert_used = 2;
  int64_t n_ff_exp = 128;
  int64_t n_ff_shexp = 0;  // shared expert width, 0: none
  int64_t n_ctx = 128;     // training sequence length
  float rms_eps = 1e-6f;
  float rope_base = 10000.0f;
};

struct ParamTensor {
  std::string name;            // GGUF tensor name, e.g. blk.0.ffn_gate_exps.weight
  std::vector<int64_t> shape;  // row-major, outermost first
  size_t offset = 0, size = 0;
  bool decay = false;          // matrices decay, norms do not
};

// Indices into ParamLayout::tensors of one layer's tensors.
struct LayerParams {
  int attn_norm, wq, wk, wv, wo, q_norm, k_norm, ffn_norm, router, gate, up, down;
  int gate_sh = -1, up_sh = -1, down_sh = -1;
};

struct ParamLayout {
  ModelShape shape;
  std::vector<ParamTensor> tensors;
  std::vector<LayerParams> layers;
  int tok_embd = 0, output_norm = 0, output = 0;
  size_t n_params = 0;
  int64_t n_active = 0;  // parameters used per token (top-k experts of each layer)
};

// Checks the shape (throws moe::Error) and lays out the tensors.
ParamLayout make_layout(const ModelShape& s);

// Initialises parameters: N(0, 0.02) matrices (output projections scaled by
// 1/sqrt(2 n_layer)), ones for norms. Deterministic for a seed.
template <typename T>
void init_params(const ParamLayout& l, std::vector<T>& w, uint64_t seed);

}  // namespace moe::train
