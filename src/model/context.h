// An inference context over a loaded model: a KV cache with n_seq sequence slots,
// scratch buffers sized once for the largest batch, and the thread pool.
// decode() runs the forward pass (model/forward.cpp) over one batch that may mix
// tokens of several sequences (continuous batching: every expert's weights are read
// once per step for all the sequences routed to it); eval() is the one-sequence form.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "base/thread_pool.h"
#include "model/expert_cache.h"
#include "model/expert_group.h"
#include "model/model.h"
#include "model/moe.h"

namespace moe {

struct ContextOptions {
  int64_t n_ctx = 4096;   // KV cache length per sequence (tokens)
  int64_t n_seq = 1;      // sequence slots
  int64_t n_batch = 512;  // tokens per forward pass; longer inputs are split
  int n_threads = 0;      // 0: all hardware threads
  bool kv_f16 = false;    // store the KV cache in IEEE half (half the memory) instead of f32
  // Memory budget in bytes for a model loaded with LoadOptions::stream_experts:
  // resident weights + KV cache + scratch + the expert cache (model/expert_cache.h)
  // fit in it; the rest of the budget becomes expert slots. 0 for a resident model.
  int64_t mem_budget = 0;
  CachePolicy cache_policy = CachePolicy::lfu_aged;
  // With a budget: while layer l's experts compute, read the experts that layer
  // l+1's router picks for layer l's input (the residual stream changes little
  // between layers) on the cache's I/O thread. Off by default: on a 64-expert
  // synthesized model it predicted 56% of the next layer's experts but added
  // ~35% disk traffic for a hit-rate gain under 1 point (docs/STREAMING.md).
  bool prefetch = false;
};

// Wall time per stage of the forward pass, accumulated while profiling is on
// (moe bench --profile). Seconds.
struct StageTimes {
  double attention = 0, route = 0, dispatch = 0, experts = 0, combine = 0, shared_expert = 0,
         dense_ffn = 0, lm_head = 0, total = 0;
};

// Per-layer routing record of the last eval (which experts each token used).
struct RoutingRecord {
  std::vector<std::vector<int32_t>> experts;  // [n_layer][n_tokens * top_k]
};

// One token of a batch: its id, its sequence slot, its position in that sequence
// (positions of a sequence are appended in order: pos == n_past(seq) + i), and
// whether its logits are wanted.
struct BatchToken {
  int32_t token = 0;
  int32_t seq = 0;
  int64_t pos = 0;
  bool logits = false;
};

class Context {
 public:
  Context(std::shared_ptr<const Model> model, const ContextOptions& opts);

  // Runs tokens at positions n_past().. and appends them to the KV cache.
  // logits: [n_tokens, n_vocab] when all_logits, else [1, n_vocab] for the last token.
  // Throws moe::Error if the context would overflow or a token id is out of range.
  void eval(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits);

  // Runs a batch of tokens of any sequences; logits [n_wanted, n_vocab] in batch
  // order for the tokens with .logits set. Throws moe::Error for positions that do
  // not continue their sequence, a full slot, or an out-of-range token id.
  void decode(std::span<const BatchToken> batch, std::vector<float>& logits);

  int64_t n_past(int seq = 0) const { return n_past_.at(seq); }
  // Bytes of the KV cache (all layers, sequences and positions).
  size_t kv_cache_bytes() const {
    return opts_.kv_f16 ? (k16_.size() + v16_.size()) * sizeof(uint16_t)
                        : (k_cache_.size() + v_cache_.size()) * sizeof(float);
  }
  int64_t n_ctx() const { return opts_.n_ctx; }
  int64_t n_seq() const { return opts_.n_seq; }
  void reset() { std::fill(n_past_.begin(), n_past_.end(), 0); }
  // Keeps the first n positions of a sequence (prefix reuse) and drops the rest.
  void truncate(int seq, int64_t n);
  const Model& model() const { return *model_; }
  ThreadPool& pool() { return pool_; }

  // When enabled, eval() records the experts chosen per layer (for statistics and tests).
  void set_record_routing(bool on) { record_routing_ = on; }
  const RoutingRecord& routing() const { return routing_; }
  void set_profile(bool on) { profile_ = on; }
  const StageTimes& stage_times() const { return times_; }
  void reset_stage_times() { times_ = {}; }
  // The expert cache of a streamed model (nullptr when the experts are resident),
  // and how the budget was split.
  const ExpertCache* expert_cache() const { return expert_cache_.get(); }
  ExpertCache* expert_cache() { return expert_cache_.get(); }
  const ExpertCachePlan& cache_plan() const { return cache_plan_; }
  // Bytes of the scratch buffers (activations, routing, dispatch).
  size_t scratch_bytes() const;
  // Tokens routed to each expert, accumulated over all evals: [n_layer][n_expert].
  const std::vector<std::vector<int64_t>>& expert_load() const { return expert_load_; }
  // Expert parallelism (model/expert_group.h): from now on this context computes only
  // the routed experts that group->rank() owns and sums the MoE outputs over the group.
  // Every member must run the same calls on the same tokens. nullptr: all experts here.
  void set_expert_group(std::shared_ptr<ExpertGroup> group) { group_ = std::move(group); }
  const ExpertGroup* expert_group() const { return group_.get(); }

 private:
  friend struct Forward;
  // The forward pass over at most n_batch tokens; logits for tokens with .logits.
  void forward(std::span<const BatchToken> batch, float* logits);

  // Y[T, n_out] = X[T, n_in] . W^T  for expert slice `expert` of W (0 for 2-D).
  void linear(const Tensor& W, const float* X, int64_t T, float* Y, int64_t expert = 0);
  void linear_multi(std::span<const Tensor* const> Ws, const float* X, int64_t T,
                    std::span<float* const> Ys, int64_t expert = 0);
  void quantize_rows(GgmlType weight_type, const float* X, int64_t T, int64_t n, uint8_t* dst);
  // fn(t0, t1) over [0, T) in chunks of tokens, on the pool when the batch is big
  // enough to pay for a parallel region (prefill), inline otherwise (decode). For the
  // per-token work between GEMMs (norms, RoPE, cache writes, routing, combine): each
  // token's arithmetic does not depend on the split.
  void for_tokens(int64_t T, const std::function<void(int64_t, int64_t)>& fn);
  // fn(t) for every token t of [0, T), split as for_tokens.
  void each_token(int64_t T, const std::function<void(int64_t)>& fn) {
    for_tokens(T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) fn(t);
    });
  }

  void gemm_rows(const Tensor& W, int64_t expert, const uint8_t* X_q, size_t x_stride, int64_t m,
                 float* Y, int64_t ldy, int64_t r0, int64_t r1);
  // As gemm_rows for a matrix of W's type and shape at w (an expert in the model
  // or in an expert cache slot).
  void gemm_matrix(const Tensor& W, MatrixRef w, const uint8_t* X_q, size_t x_stride, int64_t m,
                   float* Y, int64_t ldy, int64_t r0, int64_t r1);
  void attention(int il, std::span<const BatchToken> batch, const float* q, float* out);
  // ---- flash attention (model/attention.cpp): work lists and per-thread scratch,
  // created and grown by attention() on the calling thread. ----
  struct AttentionScratch;
  std::shared_ptr<AttentionScratch> attn_scratch_;
  void standard_attention(int il, std::span<const BatchToken> batch, const float* xn, float* out);
  // MLA attention block (model/mla.cpp): normed input xn [T, n_embd] -> out [T, n_embd].
  void mla_attention(int il, std::span<const BatchToken> batch, const float* xn, float* out);
  void dense_ffn(const Tensor& gate, const Tensor& up, const Tensor& down, const float* x,
                 int64_t T, int64_t n_ff, float* out);
  // KV cache: rows of kv_k_dim_ / kv_v_dim_ values per (layer, sequence, position),
  // f32 or f16. kv_store converts on the way in; KvView reads either.
  struct KvView {
    const float* f32;
    const uint16_t* f16;
    int64_t row;  // values per position
    float dot(const float* q, int64_t j, int64_t off, int64_t n) const;
    void axpy(float a, int64_t j, int64_t off, int64_t n, float* y) const;
  };
  void kv_store(bool k, int il, int seq, int64_t pos, const float* src);
  KvView kv_view(bool k, int il, int seq) const;
  void moe_ffn(int il, const float* x, int64_t T, float* out);
  // The weights of experts (of layer il) as the kernels read them: views into the
  // model, or slots of the expert cache filled from disk. The one place where
  // streaming enters the forward pass.
  void expert_weights(int il, std::span<const int32_t> experts, ExpertMatrices* out);
  // gate/up -> SwiGLU -> down over the dispatched segments of `experts`.
  void expert_matmul(const LayerWeights& L, std::span<const int32_t> experts,
                     const ExpertMatrices* w);
  // With an expert group: drops the experts other members own from disp_.active and
  // zeroes their slots' output rows, so combine adds exactly this member's share
  // (model/expert_shard.cpp).
  void keep_local_experts();

  std::shared_ptr<const Model> model_;
  ContextOptions opts_;
  ThreadPool pool_;
  std::vector<int64_t> n_past_;  // [n_seq]

  // KV cache, f32: [n_layer][n_seq][n_ctx][n_head_kv * head_dim]
  std::vector<float> k_cache_, v_cache_;      // f32 cache
  std::vector<uint16_t> k16_, v16_;           // f16 cache

  // Scratch, sized for n_batch tokens at construction.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, tmp_, ffn_out_;  // [n_batch, *]
  std::vector<float> scores_;                                    // [n_threads, n_ctx]
  std::vector<float> rope_cs_;                                   // [n_batch, n_rot]
  std::vector<float> mla_q_, mla_o_;                             // [n_batch, n_head, kv_lora]
  int64_t kv_k_dim_ = 0, kv_v_dim_ = 0;                          // floats per cached token
  std::vector<uint8_t> qbuf_;                                    // quantized activations
  struct LinearBlock {
    int32_t m;
    int64_t r0, r1;
  };
  std::vector<LinearBlock> linear_blocks_;
  // MoE scratch
  std::vector<float> router_;        // [n_batch, n_expert]
  std::vector<int32_t> sel_;         // [n_batch, top_k]
  std::vector<float> sel_w_;         // [n_batch, top_k]
  Dispatch disp_;
  std::vector<uint8_t> xs_q_;        // dispatched quantized rows [n_slots, qrow]
  std::vector<float> eg_, eu_;       // [n_slots, n_ff_exp]
  std::vector<uint8_t> ea_q_;        // quantized SwiGLU output [n_slots, qrow(n_ff_exp)]
  std::vector<float> eo_;            // [n_slots, n_embd]
  std::vector<ExpertMatrices> expert_w_;  // [n_expert] weights of the experts being computed
  std::vector<int32_t> active_order_;     // active experts in the order they are computed
  // Prefetch: layer l+1's routing of layer l's input, [n_batch, top_k] and votes [n_expert].
  std::vector<int32_t> pf_sel_, pf_order_;
  std::vector<float> pf_w_;
  std::vector<int64_t> pf_votes_;
  void prefetch_next_layer(int il, const float* x, int64_t T);
  std::unique_ptr<ExpertCache> expert_cache_;
  ExpertCachePlan cache_plan_;

  bool profile_ = false;
  StageTimes times_;
  bool record_routing_ = false;
  RoutingRecord routing_;
  std::vector<std::vector<int64_t>> expert_load_;
  std::shared_ptr<ExpertGroup> group_;  // expert parallelism; nullptr: one process
};

}  // namespace moe
