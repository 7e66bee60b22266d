// Context: construction (cache and scratch sizing), the matmul wrapper that
// quantizes activations once and splits weight rows over threads, attention over
// the KV cache, and the MoE block (route -> dispatch -> expert_matmul -> combine).
// The forward pass that calls these, layer by layer, is in forward.cpp.
#include "model/context.h"
#include "base/timer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <thread>

#include "base/error.h"
#include "base/fp16.h"
#include "ops/pack.h"
#include "ops/math.h"
#include "ops/quant.h"

namespace moe {
namespace {


int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Row block for splitting a matrix of n_out rows over threads: big enough to
// amortise the call, small enough to balance.
int64_t row_block(int64_t n_out, int n_threads) {
  int64_t b = (n_out + 4 * n_threads - 1) / (4 * n_threads);
  b = std::max<int64_t>(b, 16);
  return (b + 15) / 16 * 16;
}

}  // namespace

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opts)
    : model_(std::move(model)),
      opts_(opts),
      pool_(opts.n_threads > 0 ? opts.n_threads : default_threads()) {
  const ModelConfig& c = model_->cfg;
  MOE_CHECK(opts_.n_ctx > 0, "context size must be positive (got {})", opts_.n_ctx);
  MOE_CHECK(opts_.n_batch > 0, "batch size must be positive (got {})", opts_.n_batch);
  opts_.n_threads = pool_.size();
  const int64_t B = opts_.n_batch, E = c.n_embd;
  const bool mla = c.attn == AttnKind::mla;
  const int64_t qd = c.n_head * c.head_dim;
  // Cached per token: K and V rows, or for MLA the latent c and the rotary key k_pe.
  kv_k_dim_ = mla ? c.kv_lora_rank + c.n_rot : c.n_head_kv * c.head_dim;
  kv_v_dim_ = mla ? 0 : c.n_head_kv * c.head_dim_v;
  const int64_t kd = kv_k_dim_, vd = kv_v_dim_, od = c.n_head * c.head_dim_v;
  MOE_CHECK(opts_.n_seq > 0, "number of sequences must be positive (got {})", opts_.n_seq);
  n_past_.assign(opts_.n_seq, 0);
  const size_t cache_rows = static_cast<size_t>(c.n_layer * opts_.n_seq * opts_.n_ctx);
  if (opts_.kv_f16) {
    k16_.resize(cache_rows * kd);
    v16_.resize(cache_rows * vd);
  } else {
    k_cache_.resize(cache_rows * kd);
    v_cache_.resize(cache_rows * vd);
  }
  const int64_t wide = std::max({E, qd, od, c.n_ff, c.n_ff_shexp, c.q_lora_rank, c.kv_lora_rank});
  x_.resize(B * E);
  xn_.resize(B * E);
  q_.resize(B * qd);
  k_.resize(B * kd);
  v_.resize(B * vd);
  attn_.resize(B * std::max(od, E));
  tmp_.resize(B * wide * 2);
  ffn_out_.resize(B * E);
  scores_.resize(static_cast<size_t>(pool_.size()) * opts_.n_ctx);
  rope_cs_.resize(B * c.n_rot);
  if (mla) {
    mla_q_.resize(B * c.n_head * c.kv_lora_rank);
    mla_o_.resize(B * c.n_head * c.kv_lora_rank);
  }
  // Largest quantized activation row: f32 rows of the widest input are the upper bound.
  qbuf_.resize(static_cast<size_t>(B) * (wide * 4 + 64));
  if (c.is_moe()) {
    const int64_t S = B * c.n_expert_used;
    router_.resize(B * c.n_expert);
    sel_.resize(S);
    sel_w_.resize(S);
    xs_q_.resize(static_cast<size_t>(S) * (E * 4 + 64));
    eg_.resize(S * c.n_ff_exp);
    eu_.resize(S * c.n_ff_exp);
    ea_q_.resize(static_cast<size_t>(S) * (c.n_ff_exp * 4 + 64));
    eo_.resize(S * E);
    expert_w_.resize(c.n_expert);
    expert_load_.assign(c.n_layer, std::vector<int64_t>(c.n_expert, 0));
  }
  if (model_->experts_streamed) {
    MOE_CHECK(opts_.mem_budget > 0,
              "the model was loaded to stream its experts: give the context a memory budget");
    const ExpertCacheOptions co{.policy = opts_.cache_policy};
    cache_plan_ = plan_expert_cache(*model_, opts_.mem_budget,
                                    static_cast<int64_t>(kv_cache_bytes() + scratch_bytes()),
                                    co.io_threads);
    ExpertCacheOptions o = co;
    o.slots_per_layer = cache_plan_.slots_per_layer;
    expert_cache_ = std::make_unique<ExpertCache>(model_, o);
    if (opts_.prefetch) {
      pf_sel_.resize(sel_.size());
      pf_w_.resize(sel_w_.size());
      pf_votes_.resize(c.n_expert);
    }
  } else {
    MOE_CHECK(opts_.mem_budget == 0 || !c.is_moe(),
              "a memory budget needs a model loaded with LoadOptions::stream_experts");
  }
}

size_t Context::scratch_bytes() const {
  size_t b = 0;
  for (const auto* v : {&x_, &xn_, &q_, &k_, &v_, &attn_, &tmp_, &ffn_out_, &scores_, &rope_cs_,
                        &mla_q_, &mla_o_, &router_, &sel_w_, &eg_, &eu_, &eo_})
    b += v->size() * sizeof(float);
  for (const auto* v : {&qbuf_, &xs_q_, &ea_q_}) b += v->size();
  b += sel_.size() * sizeof(int32_t) + expert_w_.size() * sizeof(ExpertMatrices);
  return b;
}

void Context::eval(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  MOE_CHECK(n > 0, "eval: no tokens");
  if (n_past_[0] + n > opts_.n_ctx)
    throw_error("context overflow: {} tokens in the cache + {} new > context size {} (raise -c)",
                n_past_[0], n, opts_.n_ctx);
  std::vector<BatchToken> batch(n);
  for (int64_t i = 0; i < n; ++i)
    batch[i] = {.token = tokens[i], .seq = 0, .pos = n_past_[0] + i, .logits = all_logits || i == n - 1};
  decode(batch, logits);
}

void Context::decode(std::span<const BatchToken> batch, std::vector<float>& logits) {
  const ModelConfig& c = model_->cfg;
  const int64_t n = static_cast<int64_t>(batch.size());
  MOE_CHECK(n > 0, "decode: empty batch");
  // Validate the whole batch before touching the cache.
  std::vector<int64_t> next(n_past_);
  int64_t n_logits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const BatchToken& b = batch[i];
    MOE_CHECK(b.seq >= 0 && b.seq < opts_.n_seq, "batch token {}: sequence {} out of range [0, {})",
              i, b.seq, opts_.n_seq);
    MOE_CHECK(b.token >= 0 && b.token < c.n_vocab, "token id {} at index {} is out of range [0, {})",
              b.token, i, c.n_vocab);
    MOE_CHECK(b.pos == next[b.seq], "batch token {}: position {} of sequence {} does not continue it (expected {})",
              i, b.pos, b.seq, next[b.seq]);
    if (b.pos >= opts_.n_ctx)
      throw_error("context overflow: sequence {} would reach {} tokens > context size {} (raise -c)",
                  b.seq, b.pos + 1, opts_.n_ctx);
    next[b.seq]++;
    n_logits += b.logits;
  }
  logits.resize(static_cast<size_t>(n_logits * c.n_vocab));
  if (record_routing_) routing_.experts.assign(c.n_layer, {});
  float* out = logits.data();
  for (int64_t i = 0; i < n; i += opts_.n_batch) {
    auto part = batch.subspan(i, std::min(opts_.n_batch, n - i));
    forward(part, out);
    for (const auto& b : part) {
      n_past_[b.seq] = b.pos + 1;
      out += b.logits ? c.n_vocab : 0;
    }
  }
}

void Context::truncate(int seq, int64_t n) {
  MOE_CHECK(seq >= 0 && seq < opts_.n_seq, "sequence {} out of range", seq);
  n_past_[seq] = std::clamp<int64_t>(n, 0, n_past_[seq]);
}

void Context::kv_store(bool k, int il, int seq, int64_t pos, const float* src) {
  const int64_t row = k ? kv_k_dim_ : kv_v_dim_;
  const size_t at = static_cast<size_t>(((il * opts_.n_seq + seq) * opts_.n_ctx + pos) * row);
  if (opts_.kv_f16) {
    uint16_t* dst = (k ? k16_ : v16_).data() + at;
    for (int64_t i = 0; i < row; ++i) dst[i] = f32_to_fp16(src[i]);
  } else {
    std::copy(src, src + row, (k ? k_cache_ : v_cache_).data() + at);
  }
}

Context::KvView Context::kv_view(bool k, int il, int seq) const {
  const int64_t row = k ? kv_k_dim_ : kv_v_dim_;
  const size_t at = static_cast<size_t>((il * opts_.n_seq + seq) * opts_.n_ctx * row);
  if (opts_.kv_f16) return {nullptr, (k ? k16_ : v16_).data() + at, row};
  return {(k ? k_cache_ : v_cache_).data() + at, nullptr, row};
}

float Context::KvView::dot(const float* q, int64_t j, int64_t off, int64_t n) const {
  return f16 ? ops::dot_f32_f16(q, f16 + j * row + off, n) : ops::dot_f32(q, f32 + j * row + off, n);
}
void Context::KvView::axpy(float a, int64_t j, int64_t off, int64_t n, float* y) const {
  if (f16) {
    ops::axpy_f16(a, f16 + j * row + off, y, n);
  } else {
    ops::axpy(a, f32 + j * row + off, y, n);
  }
}

void Context::for_tokens(int64_t T, const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kMinParallel = 16;  // below this, a region's wake-up costs more than it saves
  if (T < kMinParallel || pool_.size() == 1) return fn(0, T);
  const int64_t chunks = std::min<int64_t>(T, 4 * pool_.size());
  pool_.parallel_for(chunks, [&](int64_t i, int) { fn(T * i / chunks, T * (i + 1) / chunks); });
}

void Context::quantize_rows(GgmlType weight_type, const float* X, int64_t T, int64_t n,
                            uint8_t* dst) {
  const size_t qrow = ops::activation_row_bytes(weight_type, n);
  each_token(T, [&](int64_t t) { ops::quantize_activation_row(weight_type, X + t * n, dst + t * qrow, n); });
}

// Rows [r0, r1) of matrix `expert` of W times m rounded activation rows, through
// the packed kernels when the loader packed W (ops/pack.h).
void Context::gemm_rows(const Tensor& W, int64_t expert, const uint8_t* X_q, size_t x_stride,
                        int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1) {
  const MatrixRef w = W.packed ? MatrixRef{W.packed_matrix(expert), true}
                               : MatrixRef{W.matrix(expert), false};
  gemm_matrix(W, w, X_q, x_stride, m, Y, ldy, r0, r1);
}

void Context::gemm_matrix(const Tensor& W, MatrixRef w, const uint8_t* X_q, size_t x_stride,
                          int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1) {
  if (w.packed) {
    ops::gemm_packed(W.type, w.data, W.ne[1], X_q, x_stride, m, Y, ldy, r0, r1, W.ne[0]);
  } else {
    ops::gemm(W.type, w.data, W.row_bytes, X_q, x_stride, m, Y, ldy, r0, r1, W.ne[0]);
  }
}

void Context::linear(const Tensor& W, const float* X, int64_t T, float* Y, int64_t expert) {
  const Tensor* ws[1] = {&W};
  float* ys[1] = {Y};
  linear_multi(ws, X, T, ys, expert);
}

// Several matrices with the same input (q/k/v, gate/up): the input rows are rounded
// once when the matrices share a dot-product partner format, and all row blocks of
// all matrices run in one parallel region.
void Context::linear_multi(std::span<const Tensor* const> Ws, const float* X, int64_t T,
                           std::span<float* const> Ys, int64_t expert) {
  const int64_t n_in = Ws[0]->ne[0];
  const GgmlType act = ops::vec_dot_type(Ws[0]->type);
  for (const Tensor* W : Ws) {
    if (ops::vec_dot_type(W->type) != act || W->ne[0] != n_in) {  // mixed formats: one by one
      for (size_t i = 0; i < Ws.size(); ++i) linear(*Ws[i], X, T, Ys[i], expert);
      return;
    }
  }
  const size_t qrow = ops::activation_row_bytes(Ws[0]->type, n_in);
  MOE_DASSERT(qrow * T <= qbuf_.size());
  quantize_rows(Ws[0]->type, X, T, n_in, qbuf_.data());
  using Block = LinearBlock;
  std::vector<Block>& blocks = linear_blocks_;
  blocks.clear();
  int64_t rows = 0;
  for (const Tensor* W : Ws) rows += W->ne[1];
  const int64_t rb = row_block(rows, pool_.size());
  for (size_t i = 0; i < Ws.size(); ++i)
    for (int64_t r0 = 0; r0 < Ws[i]->ne[1]; r0 += rb)
      blocks.push_back({static_cast<int32_t>(i), r0, std::min(Ws[i]->ne[1], r0 + rb)});
  pool_.parallel_for(static_cast<int64_t>(blocks.size()), [&](int64_t b, int) {
    const Block& k = blocks[b];
    const Tensor& W = *Ws[k.m];
    const int64_t n_out = W.ne[1];
    gemm_rows(W, expert, qbuf_.data(), qrow, T, Ys[k.m] + k.r0, n_out, k.r0, k.r1);
  });
}

// expert_matmul: for each active expert's segment of dispatched rows,
// G = X.gate^T, U = X.up^T (one parallel region over (expert, row block)),
// A = silu(G) * U, then O = A.down^T (a second region). Reads only active experts.
void Context::expert_matmul(const LayerWeights& L, std::span<const int32_t> experts,
                            const ExpertMatrices* w) {
  const ModelConfig& c = model_->cfg;
  const int64_t E = c.n_embd, F = c.n_ff_exp;
  const size_t qx = ops::activation_row_bytes(L.gate_exps.type, E);
  const size_t qa = ops::activation_row_bytes(L.down_exps.type, F);
  const int nt = pool_.size();

  struct Item {
    int32_t index;  // into experts
    int64_t r0, r1;
  };
  std::vector<Item> items;
  auto make_items = [&](int64_t n_rows) {
    items.clear();
    // Fewer, larger blocks when many experts are active: one item per expert and row block.
    const int64_t per_expert = std::max<int64_t>(1, 4 * nt / std::max<size_t>(1, experts.size()));
    int64_t rb = std::max<int64_t>(16, (n_rows + per_expert - 1) / per_expert);
    rb = (rb + 15) / 16 * 16;
    for (size_t i = 0; i < experts.size(); ++i)
      for (int64_t r0 = 0; r0 < n_rows; r0 += rb)
        items.push_back({static_cast<int32_t>(i), r0, std::min(n_rows, r0 + rb)});
  };

  make_items(F);
  pool_.parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i, int) {
    const Item& it = items[i];
    const int32_t e = experts[it.index];
    const int64_t off = disp_.offset[e], n = disp_.offset[e + 1] - off;
    const uint8_t* x = xs_q_.data() + off * qx;
    gemm_matrix(L.gate_exps, w[it.index].gate, x, qx, n, eg_.data() + off * F + it.r0, F, it.r0, it.r1);
    gemm_matrix(L.up_exps, w[it.index].up, x, qx, n, eu_.data() + off * F + it.r0, F, it.r0, it.r1);
  });
  // Expert biases, SwiGLU and the activation rounding for down, per slot.
  pool_.parallel_for(static_cast<int64_t>(experts.size()), [&](int64_t ai, int) {
    const int32_t e = experts[ai];
    for (int64_t s = disp_.offset[e]; s < disp_.offset[e + 1]; ++s) {
      float* g = eg_.data() + s * F;
      float* u = eu_.data() + s * F;
      if (L.gate_exps_b.present()) {
        ops::axpy(1.0f, L.gate_exps_b.f32() + e * F, g, F);
        ops::axpy(1.0f, L.up_exps_b.f32() + e * F, u, F);
      }
      if (c.ffn_act == FfnAct::swiglu_clamped) {
        ops::swiglu_clamped(g, u, g, F, 1.702f, 7.0f);
      } else {
        ops::swiglu(g, u, g, F);
      }
      ops::quantize_activation_row(L.down_exps.type, g, ea_q_.data() + s * qa, F);
    }
  });
  make_items(E);
  pool_.parallel_for(static_cast<int64_t>(items.size()), [&](int64_t i, int) {
    const Item& it = items[i];
    const int32_t e = experts[it.index];
    const int64_t off = disp_.offset[e], n = disp_.offset[e + 1] - off;
    gemm_matrix(L.down_exps, w[it.index].down, ea_q_.data() + off * qa, qa, n,
                eo_.data() + off * E + it.r0, E, it.r0, it.r1);
  });
  if (L.down_exps_b.present())
    for (int32_t e : experts)
      for (int64_t s = disp_.offset[e]; s < disp_.offset[e + 1]; ++s)
        ops::axpy(1.0f, L.down_exps_b.f32() + e * E, eo_.data() + s * E, E);
}

// Layer il+1's router applied to layer il's FFN input x [T, n_embd]: the experts
// it picks, most votes first, are handed to the cache's I/O thread, which reads
// them while layer il computes. Uses router_ (layer il's routing is done).
void Context::prefetch_next_layer(int il, const float* x, int64_t T) {
  const ModelConfig& c = model_->cfg;
  const int next = il + 1;
  if (next >= c.n_layer || !c.layer_is_moe(next)) return;
  const LayerWeights& N = model_->layers[next];
  const int64_t K = c.n_expert_used;
  linear(N.gate_inp, x, T, router_.data());
  if (N.gate_inp_b.present())
    for (int64_t t = 0; t < T; ++t) ops::axpy(1.0f, N.gate_inp_b.f32(), router_.data() + t * c.n_expert, c.n_expert);
  const RouteParams rp{.n_expert = c.n_expert, .top_k = K, .gating = c.gating, .norm_topk = c.norm_topk,
                       .scale = c.routed_scale,
                       .selection_bias = N.exp_probs_b.present() ? N.exp_probs_b.f32() : nullptr,
                       .n_group = c.n_group, .n_group_used = c.n_group_used};
  route(router_.data(), T, rp, pf_sel_.data(), pf_w_.data());
  std::fill(pf_votes_.begin(), pf_votes_.end(), 0);
  for (int64_t i = 0; i < T * K; ++i) pf_votes_[pf_sel_[i]]++;
  pf_order_.clear();
  for (int32_t e = 0; e < c.n_expert; ++e)
    if (pf_votes_[e] > 0) pf_order_.push_back(e);
  std::stable_sort(pf_order_.begin(), pf_order_.end(),
                   [&](int32_t a, int32_t b) { return pf_votes_[a] > pf_votes_[b]; });
  expert_cache_->prefetch(next, pf_order_);
}

void Context::expert_weights(int il, std::span<const int32_t> experts, ExpertMatrices* out) {
  if (expert_cache_) return expert_cache_->acquire(il, experts, out);
  const LayerWeights& L = model_->layers[il];
  auto ref = [](const Tensor& W, int32_t e) {
    return W.packed ? MatrixRef{W.packed_matrix(e), true} : MatrixRef{W.matrix(e), false};
  };
  for (size_t i = 0; i < experts.size(); ++i)
    out[i] = {ref(L.gate_exps, experts[i]), ref(L.up_exps, experts[i]), ref(L.down_exps, experts[i])};
}

// SwiGLU FFN: out [T, n_embd] = down(silu(gate x) * up x); uses tmp_.
void Context::dense_ffn(const Tensor& gate, const Tensor& up, const Tensor& down, const float* x,
                        int64_t T, int64_t n_ff, float* out) {
  float* g = tmp_.data();
  float* u = tmp_.data() + T * n_ff;
  const Tensor* ws[2] = {&gate, &up};
  float* ys[2] = {g, u};
  linear_multi(ws, x, T, ys);
  for_tokens(T, [&](int64_t t0, int64_t t1) {
    ops::swiglu(g + t0 * n_ff, u + t0 * n_ff, g + t0 * n_ff, (t1 - t0) * n_ff);
  });
  linear(down, g, T, out);
}

// The MoE FFN for T tokens: x [T, n_embd] (normed) -> out [T, n_embd].
void Context::moe_ffn(int il, const float* x, int64_t T, float* out) {
  const ModelConfig& c = model_->cfg;
  const LayerWeights& L = model_->layers[il];
  const int64_t E = c.n_embd, K = c.n_expert_used;

  // route: router logits [T, n_expert] from unrounded activations (router is f32).
  auto slot = [&](double& d) { return profile_ ? &d : nullptr; };
  std::optional<StageTimer> timer(std::in_place, slot(times_.route));
  linear(L.gate_inp, x, T, router_.data());
  const RouteParams rp{.n_expert = c.n_expert, .top_k = K, .gating = c.gating, .norm_topk = c.norm_topk,
                       .scale = c.routed_scale,
                       .selection_bias = L.exp_probs_b.present() ? L.exp_probs_b.f32() : nullptr,
                       .n_group = c.n_group, .n_group_used = c.n_group_used};
  for_tokens(T, [&](int64_t t0, int64_t t1) {
    float* lg = router_.data() + t0 * c.n_expert;
    if (L.gate_inp_b.present())
      for (int64_t t = t0; t < t1; ++t) ops::axpy(1.0f, L.gate_inp_b.f32(), router_.data() + t * c.n_expert, c.n_expert);
    route(lg, t1 - t0, rp, sel_.data() + t0 * K, sel_w_.data() + t0 * K);
  });
  if (record_routing_) {
    auto& rec = routing_.experts[il];
    rec.insert(rec.end(), sel_.begin(), sel_.begin() + T * K);
  }
  for (int64_t i = 0; i < T * K; ++i) expert_load_[il][sel_[i]]++;

  // dispatch: quantize each token row once, then copy it to its experts' segments.
  timer.emplace(slot(times_.dispatch));
  dispatch(sel_.data(), T, K, c.n_expert, disp_);
  if (group_ || model_->expert_ranks > 1) keep_local_experts();  // expert parallelism
  const size_t qx = ops::activation_row_bytes(L.gate_exps.type, E);
  quantize_rows(L.gate_exps.type, x, T, E, qbuf_.data());
  each_token(disp_.n_slots(), [&](int64_t s) {
    std::memcpy(xs_q_.data() + s * qx, qbuf_.data() + disp_.slot_token[s] * qx, qx);
  });

  // expert_matmul over the active experts, in chunks of at most the cache's slots
  // per layer when streaming (each expert is read once for all its tokens).
  timer.emplace(slot(times_.experts));
  const size_t n_active = disp_.active.size();
  const size_t chunk = expert_cache_ ? static_cast<size_t>(expert_cache_->slots_per_layer()) : n_active;
  active_order_.assign(disp_.active.begin(), disp_.active.end());
  if (expert_cache_ && chunk < n_active) expert_cache_->resident_first(il, active_order_);
  for (size_t i = 0; i < n_active; i += chunk) {
    const std::span<const int32_t> part(active_order_.data() + i, std::min(chunk, n_active - i));
    expert_weights(il, part, expert_w_.data());
    if (i == 0 && expert_cache_ && opts_.prefetch) prefetch_next_layer(il, x, T);
    expert_matmul(L, part, expert_w_.data());
  }
  // Expert parallelism: each slot's row comes from the member that owns its expert (the
  // others hold zeros there), so every member combines exactly the one-process rows.
  if (group_) group_->sum(eo_.data(), disp_.n_slots() * E);
  timer.emplace(slot(times_.combine));

  for_tokens(T, [&](int64_t t0, int64_t t1) {
    std::fill(out + t0 * E, out + t1 * E, 0.0f);
    combine_rows(eo_.data(), disp_, sel_w_.data(), t0, t1, K, E, out);
  });

  timer.emplace(slot(times_.shared_expert));
  if (c.n_ff_shexp > 0) {
    // Shared expert: every token, optionally gated by sigmoid(gate_inp_shexp . x).
    // With an expert group, member 0 computes it and the sum hands everyone its rows.
    float* u = attn_.data();  // [T, n_embd]; the attention output is no longer needed
    if (!group_ || group_->rank() == 0) {
      dense_ffn(L.gate_shexp, L.up_shexp, L.down_shexp, x, T, c.n_ff_shexp, u);
    } else {
      std::fill(u, u + T * E, 0.0f);
    }
    if (group_) group_->sum(u, T * E);
    each_token(T, [&](int64_t t) {
      float gate = 1.0f;
      if (L.gate_inp_shexp.present()) {
        const float z = ops::dot_f32(L.gate_inp_shexp.f32(), x + t * E, E);
        gate = 1.0f / (1.0f + std::exp(-z));
      }
      ops::axpy(gate, u + t * E, out + t * E, E);
    });
  }
}

}  // namespace moe
