// Microbenchmarks of the attention core (ops/attention.h) against the per-(token,
// head) loop it replaced (a Highway dot per key into a score row, softmax, an
// axpy per key), for 16 query heads over 4 KV heads, head_dim 128, f32 and f16
// caches:
//   prefill: 512 tokens at positions 0..511 (causal), blocks of 8 tokens x 4 heads;
//   decode: one token over a cache of 512 or 4096 keys, split into 256-key chunks
//     and merged, as model/attention.cpp does, on 1 thread and on 2 (ThreadPool).
// Reports attention MACs per second (QK and PV, causal count) and the kernel target.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "ops/attention.h"
#include "ops/math.h"

namespace {

using namespace moe;

constexpr int64_t kHeads = 16, kKvHeads = 4, kDim = 128, kGroup = kHeads / kKvHeads;
constexpr int64_t kChunk = 256, kBlockTokens = 8;

struct Data {
  int64_t n_ctx, n_tok;
  std::vector<float> q, out, k, v;  // q/out [n_tok, H*D], k/v [n_ctx, Hkv*D]
  std::vector<uint16_t> k16, v16;
  std::vector<int64_t> pos;
  std::vector<int32_t> idx;
  float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  Data(int64_t ctx, int64_t tok) : n_ctx(ctx), n_tok(tok) {
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.f, 1.f);
    auto fill = [&](std::vector<float>& x, size_t n) {
      x.resize(n);
      for (auto& e : x) e = dist(rng);
    };
    fill(q, n_tok * kHeads * kDim);
    fill(k, n_ctx * kKvHeads * kDim);
    fill(v, n_ctx * kKvHeads * kDim);
    out.assign(n_tok * kHeads * kDim, 0.0f);
    for (float x : k) k16.push_back(f32_to_fp16(x));
    for (float x : v) v16.push_back(f32_to_fp16(x));
    for (int64_t i = 0; i < n_tok; ++i) {
      pos.push_back(n_ctx - n_tok + i);
      idx.push_back(static_cast<int32_t>(i));
    }
  }
  // Causal multiply-adds of QK^T and PV.
  double macs() const {
    double keys = 0;
    for (int64_t p : pos) keys += static_cast<double>(p + 1);
    return keys * kHeads * kDim * 2;
  }
};

// The replaced loop: one (token, head) at a time, scores row, softmax, axpy per key.
void old_item(Data& a, bool f16, int64_t t, int64_t h, float* s) {
  const int64_t hk = h / kGroup, row = kKvHeads * kDim, j1 = a.pos[t] + 1;
  const float* qh = a.q.data() + (t * kHeads + h) * kDim;
  float mx = -INFINITY;
  for (int64_t j = 0; j < j1; ++j) {
    const int64_t at = j * row + hk * kDim;
    s[j] = (f16 ? ops::dot_f32_f16(qh, a.k16.data() + at, kDim)
                : ops::dot_f32(qh, a.k.data() + at, kDim)) *
           a.scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0.0;
  for (int64_t j = 0; j < j1; ++j) sum += (s[j] = std::exp(s[j] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  float* o = a.out.data() + (t * kHeads + h) * kDim;
  std::fill(o, o + kDim, 0.0f);
  for (int64_t j = 0; j < j1; ++j) {
    const int64_t at = j * row + hk * kDim;
    if (f16) {
      ops::axpy_f16(s[j] * inv, a.v16.data() + at, o, kDim);
    } else {
      ops::axpy(s[j] * inv, a.v.data() + at, o, kDim);
    }
  }
}

ops::AttentionParams params(const Data& a) {
  return {.head_dim = kDim, .head_dim_v = kDim, .n_group = kGroup, .scale = a.scale};
}
ops::KvRows rows(const Data& a, bool f16, bool k, int64_t hk) {
  const int64_t row = kKvHeads * kDim;
  if (f16) return {.f16 = (k ? a.k16 : a.v16).data() + hk * kDim, .stride = row};
  return {.f32 = (k ? a.k : a.v).data() + hk * kDim, .stride = row};
}
ops::AttentionQueries queries(Data& a, int64_t hk, int64_t t0, int64_t t1) {
  return {.n_tok = t1 - t0,
          .idx = a.idx.data() + t0,
          .pos = a.pos.data(),
          .q = a.q.data() + hk * kGroup * kDim,
          .q_stride = kHeads * kDim,
          .out = a.out.data() + hk * kGroup * kDim,
          .out_stride = kHeads * kDim};
}

// Work items of the tiled version: (query block, KV head) for prefill,
// (KV head, key chunk) + merge for decode.
struct Flash {
  Data& a;
  bool f16;
  std::vector<float> scratch, state;
  std::vector<ops::AttentionPartial> parts;
  int64_t n_chunks, per_thread;
  Flash(Data& d, bool f, int n_threads) : a(d), f16(f) {
    per_thread = static_cast<int64_t>(ops::attention_scratch_floats(params(a), kBlockTokens));
    scratch.resize(per_thread * n_threads);
    n_chunks = a.n_tok == 1 ? (a.n_ctx + kChunk - 1) / kChunk : 0;
    const int64_t part = kGroup * (kDim + 2);
    state.resize(kKvHeads * n_chunks * part);
    for (int64_t i = 0; i < kKvHeads * n_chunks; ++i) {
      float* b = state.data() + i * part;
      parts.push_back({.m = b, .l = b + kGroup, .o = b + 2 * kGroup});
    }
  }
  int64_t n_items() const {
    return n_chunks ? kKvHeads * n_chunks
                    : kKvHeads * ((a.n_tok + kBlockTokens - 1) / kBlockTokens);
  }
  void item(int64_t i, int thread) {
    float* s = scratch.data() + per_thread * thread;
    if (n_chunks) {
      const int64_t hk = i / n_chunks, c = i % n_chunks;
      ops::attention_block(params(a), queries(a, hk, 0, 1), rows(a, f16, true, hk),
                           rows(a, f16, false, hk), c * kChunk, (c + 1) * kChunk, &parts[i], s);
    } else {
      const int64_t nb = (a.n_tok + kBlockTokens - 1) / kBlockTokens;
      const int64_t hk = i % kKvHeads, b = nb - 1 - i / kKvHeads;  // largest blocks first
      ops::attention_block(
          params(a), queries(a, hk, b * kBlockTokens, std::min(a.n_tok, (b + 1) * kBlockTokens)),
          rows(a, f16, true, hk), rows(a, f16, false, hk), 0, a.n_ctx, nullptr, s);
    }
  }
  void merge(int64_t hk) {
    ops::attention_merge(params(a), queries(a, hk, 0, 1), parts.data() + hk * n_chunks, n_chunks);
  }
};

void run_flash(Flash& f, moe::ThreadPool* pool) {
  if (pool) {
    pool->parallel_for(f.n_items(), [&](int64_t i, int t) { f.item(i, t); });
    if (f.n_chunks) pool->parallel_for(kKvHeads, [&](int64_t hk, int) { f.merge(hk); });
  } else {
    for (int64_t i = 0; i < f.n_items(); ++i) f.item(i, 0);
    if (f.n_chunks)
      for (int64_t hk = 0; hk < kKvHeads; ++hk) f.merge(hk);
  }
}

void run_old(Data& a, bool f16, moe::ThreadPool* pool, std::vector<float>& s) {
  const int64_t n = a.n_tok * kHeads;
  if (pool) {
    pool->parallel_for(n, [&](int64_t i, int t) {
      old_item(a, f16, i / kHeads, i % kHeads, s.data() + t * a.n_ctx);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) old_item(a, f16, i / kHeads, i % kHeads, s.data());
  }
}

void bm_attention(benchmark::State& state, bool flash, bool f16, int64_t n_ctx, int64_t n_tok,
                  int threads) {
  Data a(n_ctx, n_tok);
  std::unique_ptr<moe::ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<moe::ThreadPool>(threads);
  Flash f(a, f16, threads);
  std::vector<float> s(static_cast<size_t>(threads) * n_ctx);
  for (auto _ : state) {
    if (flash) {
      run_flash(f, pool.get());
    } else {
      run_old(a, f16, pool.get(), s);
    }
    benchmark::DoNotOptimize(a.out.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(a.macs() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(ops::attention_target_name());
}

void register_all() {
  struct Shape {
    const char* name;
    int64_t n_ctx, n_tok;
  };
  const Shape shapes[] = {{"prefill512", 512, 512}, {"decode512", 512, 1}, {"decode4096", 4096, 1}};
  for (const Shape& sh : shapes) {
    for (bool f16 : {false, true}) {
      for (int threads : {1, 2}) {
        if (threads == 2 && sh.n_tok != 1) continue;  // prefill: one thread (kernel ratio)
        for (bool flash : {false, true}) {
          const std::string name = std::string("attention_") + sh.name + (f16 ? "_f16" : "_f32") +
                                   (flash ? "/tiled" : "/old") + (threads == 2 ? "/2threads" : "");
          auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            bm_attention(st, flash, f16, sh.n_ctx, sh.n_tok, threads);
          });
          b->Unit(benchmark::kMicrosecond)->UseRealTime();
        }
      }
    }
  }
}

const int registered = (register_all(), 0);

}  // namespace
