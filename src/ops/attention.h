// Flash-style softmax attention kernels (tiled, online softmax) for one block of
// queries against the cached keys/values of one KV head. Called by the model's
// attention core (model/attention.cpp), which groups a batch into runs of one
// sequence and splits them into (query block, KV head, key chunk) work items.
//
// For query row r (token i, head h of the group sharing the KV head) at position
// pos_i, over the visible keys j (causal: j <= pos_i; window w > 0: j > pos_i - w):
//   s_j = scale * q_r . k_j,   out_r = sum_j exp(s_j - m) v_j / (sum_j exp(s_j - m) + exp(sink_h -
//   m))
// computed block by block over keys with the running max m, running sum l and a
// rescaled output accumulator (Milakov & Gimelshein 2018; Dao et al. 2022). Key
// blocks are aligned to absolute multiples of attention_key_block, so a row's
// result does not depend on which other rows share its block.
// The scalar oracle is the naive double-precision attention in tests/ops/attention_test.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace moe::ops {

// Keys or values of one KV head: position j at f32 + j * stride or f16 + j * stride
// (exactly one of the two is set; f16 is IEEE half, as in an f16 KV cache).
struct KvRows {
  const float* f32 = nullptr;
  const uint16_t* f16 = nullptr;
  int64_t stride = 0;  // elements between consecutive positions
};

// Which inner loops compute a block (automatic: by the number of rows).
enum class AttentionKernel {
  automatic,
  rows_in_lanes,  // query rows across SIMD lanes: blocks of >= a vector of rows (prefill)
  dims_in_lanes,  // head dims across SIMD lanes: a few rows (decode, one token per sequence)
};

struct AttentionParams {
  int64_t head_dim = 0;          // D: query and key width
  int64_t head_dim_v = 0;        // Dv: value and output width
  int64_t n_group = 1;           // g: query heads sharing the KV head (rows per token)
  float scale = 1.0f;            // logit scale (1/sqrt(D) for most models)
  int64_t window = 0;            // 0: all keys <= pos; else the last `window` of them
  const float* sinks = nullptr;  // [g] extra logit per head in the denominator, or null
  AttentionKernel kernel = AttentionKernel::automatic;
};

// One block of queries: n_tok tokens of one sequence, each with the g heads of
// the group. Token i is row idx[i] of the batch: its heads are contiguous,
// q + idx[i] * q_stride  [g, D], out + idx[i] * out_stride  [g, Dv], pos[idx[i]].
struct AttentionQueries {
  int64_t n_tok = 0;
  const int32_t* idx = nullptr;  // [n_tok] batch rows
  const int64_t* pos = nullptr;  // [batch] positions
  const float* q = nullptr;
  int64_t q_stride = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
};

// The softmax state of a block over part of the keys (a key chunk), for merging:
// row r = i * g + h: m [rows] running max, l [rows] sum of exp(s - m),
// o [rows, Dv] unnormalised sum of exp(s - m) v. Sinks are left to the merge.
struct AttentionPartial {
  float* m = nullptr;
  float* l = nullptr;
  float* o = nullptr;
};

// Keys in a key block (alignment of blocks and of key chunks in the caller).
inline constexpr int64_t attention_key_block = 64;

// floats of scratch one attention_block call on at most n_tok tokens needs.
size_t attention_scratch_floats(const AttentionParams& p, int64_t n_tok);

// Attention of a query block over keys [k_begin, k_end) intersected with each
// token's visible range. partial == nullptr: normalised output (with sinks) into
// the query block's out rows; else the chunk's softmax state into *partial.
// scratch: attention_scratch_floats(p, qb.n_tok) floats, owned by the calling thread.
void attention_block(const AttentionParams& p, const AttentionQueries& qb, const KvRows& k,
                     const KvRows& v, int64_t k_begin, int64_t k_end,
                     const AttentionPartial* partial, float* scratch);

// Combines the states of n_parts key chunks of the same query block (in any order)
// into its normalised output, adding the sinks:
//   M = max(max_c m_c, sink_h),  out = sum_c e^(m_c - M) o_c / (sum_c e^(m_c - M) l_c + e^(sink_h -
//   M))
void attention_merge(const AttentionParams& p, const AttentionQueries& qb,
                     const AttentionPartial* parts, int64_t n_parts);

// The Highway target the kernels run on (for test and benchmark labels).
const char* attention_target_name();

}  // namespace moe::ops
