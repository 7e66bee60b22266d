// Attention core: causal softmax attention of a batch's queries over each
// sequence's KV cache (standard / GQA attention; MLA is in mla.cpp), flash-style.
// The batch is grouped into runs (the tokens of one sequence, in batch order); a
// run is cut into query blocks of ~32 rows (tokens x the g query heads of one KV
// head); a work item is (query block, KV head) and calls the tiled online-softmax
// kernel of ops/attention.h, which reads each key/value block once per query block.
// A run that fits one query block (decode) over more than kKeyChunk keys is also
// split into key chunks, so that one sequence fills the threads even with few KV
// heads; the chunks' softmax states are merged afterwards. The work list depends
// on the batch only, never on the thread count, so neither do the logits.
#include <algorithm>
#include <limits>
#include <numeric>

#include "model/context.h"
#include "ops/attention.h"

namespace moe {

namespace {
constexpr int64_t kRowsPerBlock = 32;  // query rows per block: two AVX-512 vectors of rows
constexpr int64_t kKeyChunk = 4 * ops::attention_key_block;  // keys per item when splitting
}  // namespace

// Work list and scratch of attention(), reused across calls (grown, never shrunk).
struct Context::AttentionScratch {
  struct Item {
    int32_t seq, kv_head;
    int32_t t0, t1;  // the query block: batch rows order[t0..t1)
    int64_t k0, k1;  // keys [k0, k1) (a chunk), intersected with each token's range
    int64_t part;    // chunk state parts[part], or -1: the output directly
    int64_t cost;    // rows x keys, for largest-first scheduling
  };
  struct Merge {
    int32_t kv_head;
    int32_t t0, t1;
    int64_t part0, n_parts;  // the chunk states parts[part0, part0 + n_parts)
  };
  std::vector<int32_t> order;  // [T] batch rows grouped by sequence, batch order within
  std::vector<int64_t> pos;    // [T] positions, by batch row
  std::vector<Item> items;
  std::vector<Merge> merges;
  std::vector<ops::AttentionPartial> parts;  // views into partial
  std::vector<float> partial;                // per part: m [rows], l [rows], o [rows, Dv]
  std::vector<float> scratch;                // [n_threads, per_thread]

  void plan(std::span<const BatchToken> batch, int64_t n_kv_head, int64_t g, int64_t Dv,
            int64_t window);
};

// Builds the work list: runs, query blocks of bq tokens, key chunks for one-block runs.
void Context::AttentionScratch::plan(std::span<const BatchToken> batch, int64_t n_kv_head,
                                     int64_t g, int64_t Dv, int64_t window) {
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t bq = std::max<int64_t>(1, kRowsPerBlock / g);
  pos.resize(T);
  order.resize(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = batch[t].pos;
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t x, int32_t y) { return batch[x].seq < batch[y].seq; });
  items.clear();
  merges.clear();
  std::vector<int64_t> offsets;  // float offset of each part in partial
  int64_t n_floats = 0;

  // Visible keys [lo, hi) of the tokens order[t0..t1).
  auto key_span = [&](int64_t t0, int64_t t1, int64_t& lo, int64_t& hi) {
    lo = std::numeric_limits<int64_t>::max();
    hi = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = pos[order[t]];
      hi = std::max(hi, p + 1);
      lo = std::min(lo, window > 0 ? std::max<int64_t>(0, p + 1 - window) : 0);
    }
  };
  for (int64_t r0 = 0, r1 = 0; r0 < T; r0 = r1) {
    const int32_t seq = batch[order[r0]].seq;
    while (r1 < T && batch[order[r1]].seq == seq) ++r1;
    for (int64_t t0 = r0; t0 < r1; t0 += bq) {
      const int64_t t1 = std::min(r1, t0 + bq), rows = (t1 - t0) * g;
      int64_t lo, hi;
      key_span(t0, t1, lo, hi);
      const auto i32 = [](int64_t x) { return static_cast<int32_t>(x); };
      // Key chunks (aligned to kKeyChunk) only for a run of one block.
      const int64_t c0 = lo / kKeyChunk * kKeyChunk;
      const int64_t n_chunks = r1 - r0 <= bq ? (hi - c0 + kKeyChunk - 1) / kKeyChunk : 1;
      for (int64_t hk = 0; hk < n_kv_head; ++hk) {
        if (n_chunks == 1) {
          items.push_back({seq, i32(hk), i32(t0), i32(t1), 0, hi, -1, rows * (hi - lo)});
          continue;
        }
        merges.push_back(
            {i32(hk), i32(t0), i32(t1), static_cast<int64_t>(offsets.size()), n_chunks});
        for (int64_t ch = 0; ch < n_chunks; ++ch) {
          items.push_back({seq, i32(hk), i32(t0), i32(t1), c0 + ch * kKeyChunk,
                           c0 + (ch + 1) * kKeyChunk, static_cast<int64_t>(offsets.size()),
                           rows * kKeyChunk});
          offsets.push_back(n_floats);
          n_floats += rows * (Dv + 2);
        }
      }
    }
  }
  // Largest items first, so that the dynamic schedule ends evenly.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.cost > y.cost; });
  if (partial.size() < static_cast<size_t>(n_floats)) partial.resize(n_floats);
  parts.resize(offsets.size());
  for (const Merge& m : merges) {
    const int64_t rows = (m.t1 - m.t0) * g;
    for (int64_t j = m.part0; j < m.part0 + m.n_parts; ++j) {
      float* b = partial.data() + offsets[j];
      parts[j] = {.m = b, .l = b + rows, .o = b + 2 * rows};
    }
  }
}

// Causal softmax attention of the batch's queries, each over its own sequence's
// cache (positions 0..pos, or the last n_swa of them on sliding-window layers).
// With sinks (gpt-oss) each head's softmax denominator also holds exp(sink[h]).
// q [T, n_head*head_dim] (rotated), out [T, n_head*head_dim_v].
void Context::attention(int il, std::span<const BatchToken> batch, const float* q, float* out) {
  const ModelConfig& c = model_->cfg;
  const LayerWeights& L = model_->layers[il];
  const int64_t H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim, Dv = c.head_dim_v;
  const int64_t g = H / Hkv;
  const ops::AttentionParams shape{.head_dim = D,
                                   .head_dim_v = Dv,
                                   .n_group = g,
                                   .scale = c.attn_scale,
                                   .window = c.layer_is_swa(il) ? c.n_swa : 0};
  if (!attn_scratch_) attn_scratch_ = std::make_shared<AttentionScratch>();
  AttentionScratch& a = *attn_scratch_;
  a.plan(batch, Hkv, g, Dv, shape.window);
  const size_t per_thread =
      ops::attention_scratch_floats(shape, std::max<int64_t>(1, kRowsPerBlock / g));
  if (a.scratch.size() < per_thread * pool_.size()) a.scratch.resize(per_thread * pool_.size());

  // The g query heads of KV head hk are heads hk*g .. hk*g+g-1 of each row.
  auto params = [&](int64_t hk) {
    ops::AttentionParams p = shape;
    p.sinks = L.sinks.present() ? L.sinks.f32() + hk * g : nullptr;
    return p;
  };
  auto queries = [&](int64_t hk, int64_t t0, int64_t t1) {
    return ops::AttentionQueries{.n_tok = t1 - t0,
                                 .idx = a.order.data() + t0,
                                 .pos = a.pos.data(),
                                 .q = q + hk * g * D,
                                 .q_stride = H * D,
                                 .out = out + hk * g * Dv,
                                 .out_stride = H * Dv};
  };
  auto head_rows = [](const KvView& kv, int64_t off) {
    return ops::KvRows{.f32 = kv.f32 ? kv.f32 + off : nullptr,
                       .f16 = kv.f16 ? kv.f16 + off : nullptr,
                       .stride = kv.row};
  };
  pool_.parallel_for(static_cast<int64_t>(a.items.size()), [&](int64_t i, int thread) {
    const AttentionScratch::Item& it = a.items[i];
    const ops::KvRows k = head_rows(kv_view(true, il, it.seq), it.kv_head * D);
    const ops::KvRows v = head_rows(kv_view(false, il, it.seq), it.kv_head * Dv);
    ops::attention_block(params(it.kv_head), queries(it.kv_head, it.t0, it.t1), k, v, it.k0, it.k1,
                         it.part >= 0 ? &a.parts[it.part] : nullptr,
                         a.scratch.data() + per_thread * thread);
  });
  if (a.merges.empty()) return;
  pool_.parallel_for(static_cast<int64_t>(a.merges.size()), [&](int64_t i, int) {
    const AttentionScratch::Merge& m = a.merges[i];
    ops::attention_merge(params(m.kv_head), queries(m.kv_head, m.t0, m.t1),
                         a.parts.data() + m.part0, m.n_parts);
  });
}

}  // namespace moe
