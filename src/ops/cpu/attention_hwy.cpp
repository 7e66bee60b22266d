// Highway kernels of ops/attention.h: one query block against one KV head's keys
// with the online softmax, block by block of attention_key_block keys (absolute
// alignment). Two layouts of the same recurrence:
//   rows_in_lanes: query rows across the lanes. S^T [keys, rows] = K . Q^T with one
//     broadcast key element times a vector of rows per FMA; the softmax state (m, l,
//     rescale) and O^T [Dv, rows] += V^T . P^T are vertical vector ops, no horizontal
//     sums. For blocks of at least half a vector of rows (prefill).
//   dims_in_lanes: head dims across the lanes, dot products reduced per (row, key),
//     O [rows, Dv] += P . V. For a few rows (decode: one token, g heads).
// f16 keys/values are widened into f32 tiles once per key block (rows_in_lanes,
// which reuses each element for a vector of rows) or in registers (dims_in_lanes).
// Masked logits are -inf; a block in which a row sees no key leaves that row's
// state bit-for-bit unchanged, so a row's result does not depend on its block
// neighbours.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/error.h"
#include "base/fp16.h"
#include "ops/attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/cpu/attention_hwy.cpp"
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#ifndef MOE_OPS_ATTENTION_HWY_ONCE
#define MOE_OPS_ATTENTION_HWY_ONCE
namespace moe::ops::cpu {
// Scratch carving shared by all targets: every buffer starts on a 64-byte boundary.
inline constexpr int64_t kAlign = 16;  // floats
inline int64_t round_up(int64_t n, int64_t m) {
  return (n + m - 1) / m * m;
}
// Rows of a block padded to a multiple of this (the widest vector of any target).
inline constexpr int64_t kMaxLanes = HWY_MAX_BYTES / sizeof(float) > 16
                                         ? HWY_MAX_BYTES / sizeof(float)
                                         : 16;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Scratch {
  float* qt;                       // rows_in_lanes: Q^T [D, Mp];  dims_in_lanes: Q [M, D]
  float* s;                        // S^T [Bk, Mp]  or  S [M, Bk]
  float* o;                        // O^T [Dv, Mp]  or  O [M, Dv]
  float *m, *l, *alpha, *lo, *hi;  // [Mp]
  float* kf;                       // [Bk, D]  f16 keys widened
  float* vf;                       // [Bk, Dv] f16 values widened
};

inline int64_t scratch_floats(int64_t D, int64_t Dv, int64_t rows) {
  const int64_t Mp = round_up(rows, kMaxLanes), Bk = attention_key_block;
  return round_up(D * Mp, kAlign) + round_up(Bk * Mp, kAlign) + round_up(Dv * Mp, kAlign) + 5 * Mp +
         round_up(Bk * D, kAlign) + round_up(Bk * Dv, kAlign) + kAlign;
}

inline Scratch carve(float* p, int64_t D, int64_t Dv, int64_t rows) {
  const int64_t Mp = round_up(rows, kMaxLanes), Bk = attention_key_block;
  p += (kAlign - (reinterpret_cast<uintptr_t>(p) / sizeof(float)) % kAlign) % kAlign;
  Scratch s{};
  auto take = [&](int64_t n) {
    float* r = p;
    p += round_up(n, kAlign);
    return r;
  };
  s.qt = take(D * Mp);
  s.s = take(Bk * Mp);
  s.o = take(Dv * Mp);
  s.m = take(Mp);
  s.l = take(Mp);
  s.alpha = take(Mp);
  s.lo = take(Mp);
  s.hi = take(Mp);
  s.kf = take(Bk * D);
  s.vf = take(Bk * Dv);
  return s;
}

// Visible key range [lo, hi) of token i of a block, within [k_begin, k_end).
inline void visible_keys(const AttentionParams& p, const AttentionQueries& qb, int64_t i,
                         int64_t k_begin, int64_t k_end, int64_t& lo, int64_t& hi) {
  const int64_t pos = qb.pos[qb.idx[i]];
  hi = std::min(pos + 1, k_end);
  lo = std::max(p.window > 0 ? pos + 1 - p.window : int64_t{0}, k_begin);
  lo = std::max<int64_t>(lo, 0);
}

// The key range any row of the block needs, and the range every row sees in full.
struct BlockRange {
  int64_t lo_min, hi_max;  // union
  int64_t lo_max, hi_min;  // intersection
  bool full(int64_t js, int64_t je) const { return js >= lo_max && je <= hi_min; }
};

inline BlockRange block_range(const AttentionParams& p, const AttentionQueries& qb, int64_t k_begin,
                              int64_t k_end, float* lo, float* hi) {
  BlockRange r{std::numeric_limits<int64_t>::max(), 0, 0, std::numeric_limits<int64_t>::max()};
  const int64_t g = p.n_group;
  for (int64_t i = 0; i < qb.n_tok; ++i) {
    int64_t a, b;
    visible_keys(p, qb, i, k_begin, k_end, a, b);
    if (b <= a) a = b = 0;                 // sees nothing here
    MOE_DASSERT(b <= (int64_t{1} << 24));  // positions are compared as exact floats
    for (int64_t h = 0; h < g; ++h) {
      lo[i * g + h] = static_cast<float>(a);
      hi[i * g + h] = static_cast<float>(b);
    }
    if (b > a) {
      r.lo_min = std::min(r.lo_min, a);
      r.hi_max = std::max(r.hi_max, b);
    }
    r.lo_max = std::max(r.lo_max, a);
    r.hi_min = std::min(r.hi_min, b);
  }
  return r;
}

// Row r = i * g + h of the block: its output row.
inline float* out_row(const AttentionParams& p, const AttentionQueries& qb, int64_t r) {
  const int64_t i = r / p.n_group, h = r % p.n_group;
  return qb.out + qb.idx[i] * qb.out_stride + h * p.head_dim_v;
}
inline const float* q_row(const AttentionParams& p, const AttentionQueries& qb, int64_t r) {
  const int64_t i = r / p.n_group, h = r % p.n_group;
  return qb.q + qb.idx[i] * qb.q_stride + h * p.head_dim;
}
// Initial softmax state of row r: the sink is one more logit with a zero value
// vector (m = sink, l = 1); partial states leave it to the merge.
inline void init_state(const AttentionParams& p, bool partial, int64_t r, float& m, float& l) {
  if (!partial && p.sinks) {
    m = p.sinks[r % p.n_group];
    l = 1.0f;
  } else {
    m = kNegInf;
    l = 0.0f;
  }
}
}  // namespace moe::ops::cpu
#endif  // MOE_OPS_ATTENTION_HWY_ONCE

HWY_BEFORE_NAMESPACE();
namespace moe::ops::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Accumulator registers per micro-tile: half the register file.
#if HWY_TARGET <= HWY_AVX3
constexpr int kAcc = 16;
#else
constexpr int kAcc = 8;
#endif

// Prefetches a row of n elements of a key/value stream, kAhead rows ahead: decode
// reads each cached row once, in short strided pieces (one KV head of a position)
// that the hardware prefetchers do not run ahead on.
// The address is formed as an integer: it may lie past the end of the cache (a
// prefetch never faults).
template <typename T>
HWY_INLINE void PrefetchRow(const T* base, int64_t offset, int64_t n) {
  const uintptr_t row =
      reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(offset) * sizeof(T);
  for (int64_t e = 0; e < n * static_cast<int64_t>(sizeof(T)); e += 64)
    hwy::Prefetch(reinterpret_cast<const T*>(row + static_cast<uintptr_t>(e)));
}
constexpr int64_t kAhead = 8;  // rows

// A vector of f32 from f32 or f16 (uint16_t bits) elements; one element.
template <class D>
HWY_INLINE hn::Vec<D> LoadF(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadF(D d, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}
HWY_INLINE float ToF32(float x) {
  return x;
}
HWY_INLINE float ToF32(uint16_t x) {
  return fp16_to_f32(x);
}

// Widens rows [0, n) of f16 src (row stride `stride`) to f32 dst [n, w].
template <class D>
HWY_INLINE void WidenRows(D d, const uint16_t* src, int64_t stride, int64_t n, int64_t w,
                          float* dst) {
  const hn::Rebind<hwy::float16_t, D> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t j = 0; j < n; ++j) {
    PrefetchRow(src, (j + kAhead) * stride, w);
    const auto* s = reinterpret_cast<const hwy::float16_t*>(src + j * stride);
    float* o = dst + j * w;
    int64_t e = 0;
    for (; e + N <= w; e += N) hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, s + e)), d, o + e);
    for (; e < w; ++e) o[e] = fp16_to_f32(src[j * stride + e]);
  }
}

// ---------------------------------------------------------------- rows_in_lanes

// S^T[a][rows] = sum_e K[a][e] * Q^T[e][rows] for JK keys x MV row vectors.
template <int JK, int MV, class D>
HWY_INLINE void ScoreTile(D d, const float* HWY_RESTRICT k, int64_t ks,
                          const float* HWY_RESTRICT qt, int64_t Mp, int64_t Dh,
                          float* HWY_RESTRICT s) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  V acc[JK][MV];
  for (int a = 0; a < JK; ++a)
    for (int b = 0; b < MV; ++b) acc[a][b] = hn::Zero(d);
  for (int64_t e = 0; e < Dh; ++e) {
    V qv[MV];
    for (int b = 0; b < MV; ++b) qv[b] = hn::Load(d, qt + e * Mp + b * N);
    for (int a = 0; a < JK; ++a) {
      const V kv = hn::Set(d, k[a * ks + e]);
      for (int b = 0; b < MV; ++b) acc[a][b] = hn::MulAdd(kv, qv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < JK; ++a)
    for (int b = 0; b < MV; ++b) hn::Store(acc[a][b], d, s + a * Mp + b * N);
}

template <int MV, class D>
HWY_INLINE void ScoreCols(D d, const float* k, int64_t ks, const float* qt, int64_t Mp, int64_t Dh,
                          int64_t nk, float* s) {
  constexpr int JK = kAcc / MV;
  int64_t j = 0;
  for (; j + JK <= nk; j += JK) ScoreTile<JK, MV>(d, k + j * ks, ks, qt, Mp, Dh, s + j * Mp);
  for (; j < nk; ++j) ScoreTile<1, MV>(d, k + j * ks, ks, qt, Mp, Dh, s + j * Mp);
}

// O^T[e + a][rows] = alpha[rows] * O^T[e + a][rows] + sum_j V[j][e + a] * P^T[j][rows]
// for DJ value dims x MV row vectors.
template <int DJ, int MV, class D>
HWY_INLINE void PvTile(D d, const float* HWY_RESTRICT v, int64_t vs, const float* HWY_RESTRICT pt,
                       int64_t Mp, int64_t nk, const float* HWY_RESTRICT alpha,
                       float* HWY_RESTRICT o) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  V acc[DJ][MV];
  for (int b = 0; b < MV; ++b) {
    const V al = hn::Load(d, alpha + b * N);
    for (int a = 0; a < DJ; ++a) acc[a][b] = hn::Mul(hn::Load(d, o + a * Mp + b * N), al);
  }
  for (int64_t j = 0; j < nk; ++j) {
    V pv[MV];
    for (int b = 0; b < MV; ++b) pv[b] = hn::Load(d, pt + j * Mp + b * N);
    for (int a = 0; a < DJ; ++a) {
      const V vv = hn::Set(d, v[j * vs + a]);
      for (int b = 0; b < MV; ++b) acc[a][b] = hn::MulAdd(vv, pv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < DJ; ++a)
    for (int b = 0; b < MV; ++b) hn::Store(acc[a][b], d, o + a * Mp + b * N);
}

template <int MV, class D>
HWY_INLINE void PvCols(D d, const float* v, int64_t vs, const float* pt, int64_t Mp, int64_t nk,
                       int64_t Dv, const float* alpha, float* o) {
  constexpr int DJ = kAcc / MV;
  int64_t e = 0;
  for (; e + DJ <= Dv; e += DJ) PvTile<DJ, MV>(d, v + e, vs, pt, Mp, nk, alpha, o + e * Mp);
  for (; e < Dv; ++e) PvTile<1, MV>(d, v + e, vs, pt, Mp, nk, alpha, o + e * Mp);
}

void BlockRowsInLanes(const AttentionParams& p, const AttentionQueries& qb, const KvRows& k,
                      const KvRows& v, int64_t k_begin, int64_t k_end,
                      const AttentionPartial* partial, float* scratch) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t g = p.n_group, Dh = p.head_dim, Dv = p.head_dim_v, M = qb.n_tok * g;
  const int64_t Mp = round_up(M, N), nv = Mp / N;
  const Scratch t = carve(scratch, Dh, Dv, M);

  // Q^T [D, Mp], scaled; padding rows are zero (finite scores, never written out).
  std::fill(t.qt, t.qt + Dh * Mp, 0.0f);
  for (int64_t r = 0; r < M; ++r) {
    const float* q = q_row(p, qb, r);
    for (int64_t e = 0; e < Dh; ++e) t.qt[e * Mp + r] = q[e] * p.scale;
  }
  for (int64_t r = M; r < Mp; ++r) t.lo[r] = t.hi[r] = 0.0f;
  const BlockRange br = block_range(p, qb, k_begin, k_end, t.lo, t.hi);
  for (int64_t r = 0; r < Mp; ++r) {
    if (r < M) {
      init_state(p, partial != nullptr, r, t.m[r], t.l[r]);
    } else {
      t.m[r] = kNegInf;
      t.l[r] = 0.0f;
    }
  }
  std::fill(t.o, t.o + Dv * Mp, 0.0f);

  const int64_t Bk = attention_key_block;
  const V neg_inf = hn::Set(d, kNegInf), zero = hn::Zero(d);
  for (int64_t blk = br.lo_min / Bk * Bk; blk < br.hi_max; blk += Bk) {
    const int64_t js = std::max(blk, br.lo_min), je = std::min(blk + Bk, br.hi_max), nk = je - js;
    const float* kp = k.f32 ? k.f32 + js * k.stride : t.kf;
    const int64_t ks = k.f32 ? k.stride : Dh;
    if (!k.f32) WidenRows(d, k.f16 + js * k.stride, k.stride, nk, Dh, t.kf);

    int64_t c = 0;
    for (; c + 2 <= nv; c += 2) ScoreCols<2>(d, kp, ks, t.qt + c * N, Mp, Dh, nk, t.s + c * N);
    if (c < nv) ScoreCols<1>(d, kp, ks, t.qt + c * N, Mp, Dh, nk, t.s + c * N);

    if (!br.full(js, je)) {  // causal / window mask
      for (int64_t j = 0; j < nk; ++j) {
        const V jf = hn::Set(d, static_cast<float>(js + j));
        for (int64_t b = 0; b < nv; ++b) {
          const auto keep =
              hn::And(hn::Ge(jf, hn::Load(d, t.lo + b * N)), hn::Lt(jf, hn::Load(d, t.hi + b * N)));
          float* sp = t.s + j * Mp + b * N;
          hn::Store(hn::IfThenElse(keep, hn::Load(d, sp), neg_inf), d, sp);
        }
      }
    }
    // Online softmax: m' = max(m, max_j s_j), alpha = e^(m - m'), p_j = e^(s_j - m'),
    // l' = alpha l + sum_j p_j. A row with no key so far uses 0 in place of m' = -inf.
    for (int64_t b = 0; b < nv; ++b) {
      V bm = neg_inf;
      for (int64_t j = 0; j < nk; ++j) bm = hn::Max(bm, hn::Load(d, t.s + j * Mp + b * N));
      const V m_old = hn::Load(d, t.m + b * N);
      const V m_new = hn::Max(m_old, bm);
      const V m_use = hn::IfThenElse(hn::Eq(m_new, neg_inf), zero, m_new);
      hn::Store(hn::Exp(d, hn::Sub(m_old, m_use)), d, t.alpha + b * N);
      V sum = zero;
      for (int64_t j = 0; j < nk; ++j) {
        float* sp = t.s + j * Mp + b * N;
        const V pj = hn::Exp(d, hn::Sub(hn::Load(d, sp), m_use));
        hn::Store(pj, d, sp);
        sum = hn::Add(sum, pj);
      }
      hn::Store(hn::MulAdd(hn::Load(d, t.alpha + b * N), hn::Load(d, t.l + b * N), sum), d,
                t.l + b * N);
      hn::Store(m_new, d, t.m + b * N);
    }

    const float* vp = v.f32 ? v.f32 + js * v.stride : t.vf;
    const int64_t vs = v.f32 ? v.stride : Dv;
    if (!v.f32) WidenRows(d, v.f16 + js * v.stride, v.stride, nk, Dv, t.vf);
    c = 0;
    for (; c + 2 <= nv; c += 2)
      PvCols<2>(d, vp, vs, t.s + c * N, Mp, nk, Dv, t.alpha + c * N, t.o + c * N);
    if (c < nv) PvCols<1>(d, vp, vs, t.s + c * N, Mp, nk, Dv, t.alpha + c * N, t.o + c * N);
  }

  for (int64_t r = 0; r < M; ++r) {
    if (partial) {
      partial->m[r] = t.m[r];
      partial->l[r] = t.l[r];
      float* o = partial->o + r * Dv;
      for (int64_t e = 0; e < Dv; ++e) o[e] = t.o[e * Mp + r];
    } else {
      const float inv = t.l[r] > 0.0f ? 1.0f / t.l[r] : 0.0f;
      float* o = out_row(p, qb, r);
      for (int64_t e = 0; e < Dv; ++e) o[e] = t.o[e * Mp + r] * inv;
    }
  }
}

// ---------------------------------------------------------------- dims_in_lanes

#if HWY_TARGET != HWY_SCALAR
// The sums of the 128-bit blocks of v, down to one 128-bit vector.
template <class D>
HWY_INLINE auto SumBlocks(D d, hn::Vec<D> v) {
  if constexpr (hn::MaxLanes(D()) > 4) {
    const hn::Half<D> dh;
    return SumBlocks(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  } else {
    return v;
  }
}

// [sum(a), sum(b), sum(c), sum(e)] as one 128-bit vector: two interleave-add steps
// inside each 128-bit block (lanes, then pairs), then the blocks are added;
// 4 horizontal sums for the price of about one.
template <class D>
HWY_INLINE auto SumOf4(D d, hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c, hn::Vec<D> e) {
  const hn::Repartition<uint64_t, D> d64;
  const auto ab = hn::Add(hn::InterleaveLower(d, a, b),
                          hn::InterleaveUpper(d, a, b));  // a0+a2 b0+b2 a1+a3 b1+b3
  const auto ce = hn::Add(hn::InterleaveLower(d, c, e), hn::InterleaveUpper(d, c, e));
  const auto lo =
      hn::BitCast(d, hn::InterleaveLower(d64, hn::BitCast(d64, ab), hn::BitCast(d64, ce)));
  const auto hi =
      hn::BitCast(d, hn::InterleaveUpper(d64, hn::BitCast(d64, ab), hn::BitCast(d64, ce)));
  return SumBlocks(d, hn::Add(lo, hi));
}
#endif

// s[a][r] = Q[r] . K[a] for JK keys x R rows, vectors along the head dim.
template <int JK, int R, class D, typename TK>
HWY_INLINE void DotTile(D d, const TK* HWY_RESTRICT k, int64_t ks, const float* HWY_RESTRICT q,
                        int64_t Dh, int64_t Bk, float* HWY_RESTRICT s) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  V acc[JK][R];
  for (int a = 0; a < JK; ++a)
    for (int r = 0; r < R; ++r) acc[a][r] = hn::Zero(d);
  int64_t e = 0;
  for (; e + N <= Dh; e += N) {
    V kv[JK];
    for (int a = 0; a < JK; ++a) kv[a] = LoadF(d, k + a * ks + e);
    for (int r = 0; r < R; ++r) {
      const V qv = hn::LoadU(d, q + r * Dh + e);
      for (int a = 0; a < JK; ++a) acc[a][r] = hn::MulAdd(kv[a], qv, acc[a][r]);
    }
  }
  // Horizontal sums first, in loops simple enough to unroll, so that acc stays in
  // registers; then the head dims past the last whole vector.
  float x[JK][R];
  for (int a = 0; a < JK; ++a) {
#if HWY_TARGET != HWY_SCALAR
    if constexpr (R == 4) {
      hn::StoreU(SumOf4(d, acc[a][0], acc[a][1], acc[a][2], acc[a][3]), hn::CappedTag<float, 4>(),
                 x[a]);
      continue;
    }
#endif
    for (int r = 0; r < R; ++r) x[a][r] = hn::GetLane(hn::SumOfLanes(d, acc[a][r]));
  }
  for (; e < Dh; ++e)
    for (int a = 0; a < JK; ++a)
      for (int r = 0; r < R; ++r) x[a][r] += ToF32(k[a * ks + e]) * q[r * Dh + e];
  for (int a = 0; a < JK; ++a)
    for (int r = 0; r < R; ++r) s[r * Bk + a] = x[a][r];
}

template <int R, class D, typename TK>
HWY_INLINE void DotRows(D d, const TK* k, int64_t ks, const float* q, int64_t Dh, int64_t nk,
                        int64_t Bk, float* s) {
  int64_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    PrefetchRow(k, (j + kAhead) * ks, Dh);
    PrefetchRow(k, (j + kAhead + 1) * ks, Dh);
    DotTile<2, R>(d, k + j * ks, ks, q, Dh, Bk, s + j);
  }
  for (; j < nk; ++j) DotTile<1, R>(d, k + j * ks, ks, q, Dh, Bk, s + j);
}

// O[r][e..] = alpha[r] O[r][e..] + sum_j P[r][j] V[j][e..] for R rows x DV vectors.
template <int R, int DV, class D, typename TV>
HWY_INLINE void AccTile(D d, const TV* HWY_RESTRICT v, int64_t vs, const float* HWY_RESTRICT pr,
                        int64_t Bk, int64_t nk, const float* HWY_RESTRICT alpha,
                        float* HWY_RESTRICT o, int64_t Dv) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  V acc[R][DV];
  for (int r = 0; r < R; ++r) {
    const V al = hn::Set(d, alpha[r]);
    for (int b = 0; b < DV; ++b) acc[r][b] = hn::Mul(hn::LoadU(d, o + r * Dv + b * N), al);
  }
  for (int64_t j = 0; j < nk; ++j) {
    PrefetchRow(v, (j + kAhead) * vs, DV * N);
    V vv[DV];
    for (int b = 0; b < DV; ++b) vv[b] = LoadF(d, v + j * vs + b * N);
    for (int r = 0; r < R; ++r) {
      const V pb = hn::Set(d, pr[r * Bk + j]);
      for (int b = 0; b < DV; ++b) acc[r][b] = hn::MulAdd(pb, vv[b], acc[r][b]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < DV; ++b) hn::StoreU(acc[r][b], d, o + r * Dv + b * N);
}

template <int R, class D, typename TV>
HWY_INLINE void AccRows(D d, const TV* v, int64_t vs, const float* pr, int64_t Bk, int64_t nk,
                        const float* alpha, float* o, int64_t Dv) {
  constexpr int DV = kAcc / 4;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t e = 0;
  for (; e + DV * N <= Dv; e += DV * N) AccTile<R, DV>(d, v + e, vs, pr, Bk, nk, alpha, o + e, Dv);
  for (; e + N <= Dv; e += N) AccTile<R, 1>(d, v + e, vs, pr, Bk, nk, alpha, o + e, Dv);
  for (; e < Dv; ++e) {  // dims past the last full vector
    for (int r = 0; r < R; ++r) {
      float x = o[r * Dv + e] * alpha[r];
      for (int64_t j = 0; j < nk; ++j) x += pr[r * Bk + j] * ToF32(v[j * vs + e]);
      o[r * Dv + e] = x;
    }
  }
}

// Keys and values are read in place, f16 widened in registers: each is used once
// per query block here, so a widened tile would cost a store and a load per element.
template <typename TK, typename TV>
void BlockDimsInLanes(const AttentionParams& p, const AttentionQueries& qb, const TK* kbase,
                      int64_t ks, const TV* vbase, int64_t vs, int64_t k_begin, int64_t k_end,
                      const AttentionPartial* partial, float* scratch) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t g = p.n_group, Dh = p.head_dim, Dv = p.head_dim_v, M = qb.n_tok * g;
  const int64_t Bk = attention_key_block;
  const Scratch t = carve(scratch, Dh, Dv, M);

  for (int64_t r = 0; r < M; ++r) {
    const float* q = q_row(p, qb, r);
    for (int64_t e = 0; e < Dh; ++e) t.qt[r * Dh + e] = q[e] * p.scale;
    init_state(p, partial != nullptr, r, t.m[r], t.l[r]);
  }
  const BlockRange br = block_range(p, qb, k_begin, k_end, t.lo, t.hi);
  std::fill(t.o, t.o + M * Dv, 0.0f);

  for (int64_t blk = br.lo_min / Bk * Bk; blk < br.hi_max; blk += Bk) {
    const int64_t js = std::max(blk, br.lo_min), je = std::min(blk + Bk, br.hi_max), nk = je - js;
    const int64_t nkp = round_up(nk, N);  // score rows padded with -inf to whole vectors
    const TK* kp = kbase + js * ks;
    int64_t r = 0;
    for (; r + 4 <= M; r += 4) DotRows<4>(d, kp, ks, t.qt + r * Dh, Dh, nk, Bk, t.s + r * Bk);
    for (; r < M; ++r) DotRows<1>(d, kp, ks, t.qt + r * Dh, Dh, nk, Bk, t.s + r * Bk);

    const bool full = br.full(js, je);
    for (r = 0; r < M; ++r) {
      float* s = t.s + r * Bk;
      std::fill(s + nk, s + nkp, kNegInf);
      if (!full) {
        const int64_t lo = static_cast<int64_t>(t.lo[r]), hi = static_cast<int64_t>(t.hi[r]);
        for (int64_t j = 0; j < nk; ++j)
          if (js + j < lo || js + j >= hi) s[j] = kNegInf;
      }
      // Online softmax for the row (see BlockRowsInLanes).
      V bm = hn::Set(d, kNegInf);
      for (int64_t j = 0; j < nkp; j += N) bm = hn::Max(bm, hn::LoadU(d, s + j));
      const float m_new = std::max(t.m[r], hn::GetLane(hn::MaxOfLanes(d, bm)));
      const float m_use = m_new == kNegInf ? 0.0f : m_new;
      const V mv = hn::Set(d, m_use);
      V sum = hn::Zero(d);
      for (int64_t j = 0; j < nkp; j += N) {
        const V pj = hn::Exp(d, hn::Sub(hn::LoadU(d, s + j), mv));
        hn::StoreU(pj, d, s + j);
        sum = hn::Add(sum, pj);
      }
      t.alpha[r] = hn::GetLane(hn::Exp(d, hn::Set(d, t.m[r] - m_use)));
      t.l[r] = t.alpha[r] * t.l[r] + hn::GetLane(hn::SumOfLanes(d, sum));
      t.m[r] = m_new;
    }

    const TV* vp = vbase + js * vs;
    for (r = 0; r + 4 <= M; r += 4)
      AccRows<4>(d, vp, vs, t.s + r * Bk, Bk, nk, t.alpha + r, t.o + r * Dv, Dv);
    for (; r < M; ++r) AccRows<1>(d, vp, vs, t.s + r * Bk, Bk, nk, t.alpha + r, t.o + r * Dv, Dv);
  }

  for (int64_t r = 0; r < M; ++r) {
    const float* src = t.o + r * Dv;
    if (partial) {
      partial->m[r] = t.m[r];
      partial->l[r] = t.l[r];
      std::copy(src, src + Dv, partial->o + r * Dv);
    } else {
      const float inv = t.l[r] > 0.0f ? 1.0f / t.l[r] : 0.0f;
      float* o = out_row(p, qb, r);
      for (int64_t e = 0; e < Dv; ++e) o[e] = src[e] * inv;
    }
  }
}

void AttentionBlock(const AttentionParams& p, const AttentionQueries& qb, const KvRows& k,
                    const KvRows& v, int64_t k_begin, int64_t k_end,
                    const AttentionPartial* partial, float* scratch) {
  const hn::ScalableTag<float> d;
  const int64_t rows = qb.n_tok * p.n_group;
  const bool few = 2 * rows <= static_cast<int64_t>(hn::Lanes(d));
  if (p.kernel == AttentionKernel::dims_in_lanes ||
      (p.kernel == AttentionKernel::automatic && few)) {
    if (k.f32 && v.f32) {
      BlockDimsInLanes(p, qb, k.f32, k.stride, v.f32, v.stride, k_begin, k_end, partial, scratch);
    } else if (k.f16 && v.f16) {
      BlockDimsInLanes(p, qb, k.f16, k.stride, v.f16, v.stride, k_begin, k_end, partial, scratch);
    } else if (k.f32) {
      BlockDimsInLanes(p, qb, k.f32, k.stride, v.f16, v.stride, k_begin, k_end, partial, scratch);
    } else {
      BlockDimsInLanes(p, qb, k.f16, k.stride, v.f32, v.stride, k_begin, k_end, partial, scratch);
    }
  } else {
    BlockRowsInLanes(p, qb, k, v, k_begin, k_end, partial, scratch);
  }
}

const char* TargetName() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace moe::ops::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe::ops {
namespace cpu {
HWY_EXPORT(AttentionBlock);
HWY_EXPORT(TargetName);
}  // namespace cpu

size_t attention_scratch_floats(const AttentionParams& p, int64_t n_tok) {
  return static_cast<size_t>(cpu::scratch_floats(p.head_dim, p.head_dim_v, n_tok * p.n_group));
}

void attention_block(const AttentionParams& p, const AttentionQueries& qb, const KvRows& k,
                     const KvRows& v, int64_t k_begin, int64_t k_end,
                     const AttentionPartial* partial, float* scratch) {
  HWY_DYNAMIC_DISPATCH(cpu::AttentionBlock)(p, qb, k, v, k_begin, k_end, partial, scratch);
}

void attention_merge(const AttentionParams& p, const AttentionQueries& qb,
                     const AttentionPartial* parts, int64_t n_parts) {
  const int64_t rows = qb.n_tok * p.n_group, Dv = p.head_dim_v;
  for (int64_t r = 0; r < rows; ++r) {
    float mx = p.sinks ? p.sinks[r % p.n_group] : cpu::kNegInf;
    for (int64_t c = 0; c < n_parts; ++c) mx = std::max(mx, parts[c].m[r]);
    if (mx == cpu::kNegInf) mx = 0.0f;  // no key and no sink: output 0
    float l = p.sinks ? std::exp(p.sinks[r % p.n_group] - mx) : 0.0f;
    float* o = cpu::out_row(p, qb, r);
    std::fill(o, o + Dv, 0.0f);
    for (int64_t c = 0; c < n_parts; ++c) {
      const float w = std::exp(parts[c].m[r] - mx);
      if (w == 0.0f) continue;
      l += w * parts[c].l[r];
      const float* src = parts[c].o + r * Dv;
      for (int64_t e = 0; e < Dv; ++e) o[e] += w * src[e];
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t e = 0; e < Dv; ++e) o[e] *= inv;
  }
}

const char* attention_target_name() {
  return HWY_DYNAMIC_DISPATCH(cpu::TargetName)();
}

}  // namespace moe::ops
#endif
