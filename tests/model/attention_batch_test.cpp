// Batching of the flash-style attention core (model/attention.cpp) at model level:
// a 300-token prefill (many query blocks, several key blocks, the causal diagonal)
// against token-by-token decode (one block per step; past 256 keys the keys are
// split into chunks whose softmax states are merged), batches mixing sequences
// against each sequence alone, and thread-count independence with split keys.
// Standard GQA attention (qwen3moe, 8 heads over 2 KV heads) and sliding window +
// sinks (gpt-oss, window 100 < 300), f32 and f16 KV caches.
// Tolerance (max row relative error of the logits): 1e-5 with the f32 cache, where
// only the f32 summation order differs. With the f16 cache, 1e-4: batched and
// single-token projections differ by float rounding (~1e-7), and a cached value
// that lies near an f16 rounding boundary then rounds to the neighbouring half
// (2^-11 relative) on one side only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "model/context.h"
#include "test_util.h"

namespace moe {
namespace {

constexpr double kTol = 1e-5, kTolF16Cache = 1e-4;

std::shared_ptr<const Model> tiny(const std::string& arch) {
  SynthOptions o;
  o.arch = arch;
  o.n_layer = 2;
  o.n_embd = 64;
  o.n_head = 8;
  o.n_head_kv = 2;
  o.head_dim = 32;
  o.n_vocab = 300;
  o.n_expert = 4;
  o.n_expert_used = 2;
  o.n_ff_exp = 32;
  o.std = 0;  // N(0, 1/fan_in)
  o.seed = 11;
  if (arch == "gpt-oss") o.n_swa = 100;
  return load_model(test::synth(o, "attn_batch_" + arch));
}

std::span<const float> row(const std::vector<float>& v, int64_t r, int64_t n) {
  return std::span<const float>(v).subspan(r * n, n);
}

TEST(AttentionBatch, PrefillEqualsTokenByTokenDecode) {
  for (const char* arch : {"qwen3moe", "gpt-oss"}) {
    auto model = tiny(arch);
    const int64_t V = model->cfg.n_vocab;
    auto tokens = test::random_tokens(300, V, 3);
    for (bool f16 : {false, true}) {
      std::vector<float> all, one, seq;
      Context batch(model, {.n_ctx = 320, .n_threads = 2, .kv_f16 = f16});
      batch.eval(tokens, all, true);
      Context step(model, {.n_ctx = 320, .n_threads = 2, .kv_f16 = f16});
      for (int32_t t : tokens) {
        step.eval(std::span<const int32_t>(&t, 1), one, false);
        seq.insert(seq.end(), one.begin(), one.end());
      }
      const double err = test::max_row_rel_err(seq, all, V);
      std::printf("[attention-batch] %-8s %s cache: prefill vs decode max_row_rel_err %.2e\n", arch,
                  f16 ? "f16" : "f32", err);
      EXPECT_LE(err, f16 ? kTolF16Cache : kTol) << arch << (f16 ? " f16" : " f32");
    }
  }
}

// Sequence 0 continues a 280-token prefix with 3 tokens, sequence 1 starts with 5,
// sequence 2 decodes one token after a 270-token prefix (split keys), interleaved
// in one batch; each row must give what its sequence gives alone.
TEST(AttentionBatch, MixedSequencesEqualSeparateRuns) {
  for (const char* arch : {"qwen3moe", "gpt-oss"}) {
    auto model = tiny(arch);
    const int64_t V = model->cfg.n_vocab;
    auto a = test::random_tokens(283, V, 21), b = test::random_tokens(5, V, 22),
         c = test::random_tokens(271, V, 23);
    std::vector<float> la, lb, lc;
    Context solo(model, {.n_ctx = 320, .n_threads = 2});
    solo.eval(a, la, true);
    solo.reset();
    solo.eval(b, lb, true);
    solo.reset();
    solo.eval(c, lc, true);

    Context ctx(model, {.n_ctx = 320, .n_seq = 3, .n_threads = 2});
    std::vector<float> out;
    std::vector<BatchToken> pre;
    for (int64_t i = 0; i < 280; ++i) pre.push_back({a[i], 0, i, false});
    for (int64_t i = 0; i < 270; ++i) pre.push_back({c[i], 2, i, false});
    ctx.decode(pre, out);
    const std::vector<BatchToken> mixed = {
        {b[0], 1, 0, true},     {a[280], 0, 280, true}, {b[1], 1, 1, true},
        {c[270], 2, 270, true}, {a[281], 0, 281, true}, {b[2], 1, 2, true},
        {a[282], 0, 282, true}, {b[3], 1, 3, true},     {b[4], 1, 4, true}};
    ctx.decode(mixed, out);
    ASSERT_EQ(out.size(), mixed.size() * V);
    double worst = 0;
    for (size_t i = 0; i < mixed.size(); ++i) {
      const BatchToken& t = mixed[i];
      const std::vector<float>& ref = t.seq == 0 ? la : t.seq == 1 ? lb : lc;
      const double err = test::max_row_rel_err(row(out, i, V), row(ref, t.pos, V), V);
      worst = moe::test::nan_max(worst, err);
      EXPECT_LE(err, kTol) << arch << " batch row " << i << " (seq " << t.seq << ", pos " << t.pos
                           << ")";
    }
    std::printf("[attention-batch] %-8s mixed batch vs separate runs max_row_rel_err %.2e\n", arch,
                worst);
  }
}

// Work items never depend on the thread count, so neither do the logits, also
// when a decode step splits its keys into chunks.
TEST(AttentionBatch, ThreadCountDoesNotChangeLogitsWithSplitKeys) {
  auto model = tiny("gpt-oss");
  auto tokens = test::random_tokens(290, model->cfg.n_vocab, 9);
  std::vector<std::vector<float>> logits;
  for (int threads : {1, 2, 3}) {
    Context ctx(model, {.n_ctx = 300, .n_threads = threads, .kv_f16 = true});
    std::vector<float> l, step;
    ctx.eval(std::span<const int32_t>(tokens).first(289), l, true);
    ctx.eval(std::span<const int32_t>(tokens).last(1), step, false);
    l.insert(l.end(), step.begin(), step.end());
    logits.push_back(std::move(l));
  }
  for (size_t i = 1; i < logits.size(); ++i) {
    ASSERT_EQ(logits[i].size(), logits[0].size());
    EXPECT_EQ(0, std::memcmp(logits[i].data(), logits[0].data(), logits[0].size() * sizeof(float)))
        << "threads " << i + 1;
  }
}

}  // namespace
}  // namespace moe
