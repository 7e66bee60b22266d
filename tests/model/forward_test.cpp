// The CPU forward pass against the scalar reference forward pass
// (model/reference), on random models of every architecture and weight type
// written by the synthesizer; plus batch vs one-token-at-a-time decoding,
// thread-count independence, context overflow, and the sparsity proof: experts
// the router did not pick are filled with NaN and the logits do not change.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/reference/forward_ref.h"
#include "ops/quant.h"
#include "ops/reference/quant_ref.h"
#include "test_util.h"

namespace moe {
namespace {

struct Case {
  std::string arch;
  GgmlType type;
};

SynthOptions small(const Case& c) {
  SynthOptions o;
  o.arch = c.arch;
  o.n_layer = 2;
  o.n_embd = 64;
  o.n_head = 4;
  o.n_head_kv = c.arch == "olmoe" ? 4 : 2;
  o.head_dim = 16;
  o.n_vocab = 300;
  o.std = 0;  // N(0, 1/fan_in): activations keep their scale through layers
  o.type = c.type;
  o.seed = 7 + static_cast<uint64_t>(c.type);
  const bool k_quant = c.type == GgmlType::Q4_K || c.type == GgmlType::Q5_K || c.type == GgmlType::Q6_K;
  if (k_quant) {  // K-quant rows need 256 elements
    o.n_embd = 256;
    o.n_head = 4;
    o.head_dim = 64;
  }
  if (c.arch == "llama" || c.arch == "qwen3") {
    if (c.arch == "qwen3") o.n_expert = 0;
    o.n_ff = k_quant ? 256 : 96;
  }
  o.n_expert = (c.arch == "qwen3") ? 0 : 8;
  o.n_expert_used = 2;
  o.n_ff_exp = k_quant ? 256 : 32;
  o.n_ff_shexp = k_quant ? 256 : 64;
  if (c.arch == "gpt-oss") {
    o.n_swa = 3;  // 8-token inputs reach past the window
    o.yarn_factor = 32;
    o.n_head = 8;
    o.n_head_kv = 2;
  }
  if (c.arch == "deepseek2") {
    o.n_layer = 3;  // one dense leading layer, two MoE layers
    o.n_ff = k_quant ? 256 : 96;
    o.head_dim = 48;  // qk_nope 32 + rope 16
    o.qk_rope = 16;
    o.kv_lora_rank = 64;
    o.q_lora_rank = 32;
    o.n_group = 4;
    o.n_group_used = 2;
    o.n_dense_lead = 1;
    o.yarn_factor = 40;
  }
  return o;
}

class ForwardVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardVsReference, LogitsAgree) {
  const Case c = GetParam();
  const SynthOptions o = small(c);
  auto path = test::synth(o, c.arch + "_" + std::string(type_name(c.type)));
  auto model = load_model(path);
  const bool rounds = ops::vec_dot_type(c.type) != GgmlType::F32;
  // As for the fixtures: draw token sequences until no activation rounding or
  // expert choice is within float noise of flipping (fp16/bf16 rounding has too
  // many boundaries for that; their flips are small and covered by the tolerance).
  const bool exact_types = c.type != GgmlType::F16 && c.type != GgmlType::BF16;
  std::vector<int32_t> tokens;
  std::vector<float> ref;
  int64_t ties = 0;
  for (uint64_t seed = 99; seed < 99 + 40; ++seed) {
    tokens = test::random_tokens(8, model->cfg.n_vocab, seed);
    ref = reference::forward(*model, tokens, rounds, &ties);
    if (ties == 0 || !exact_types) break;
  }
  if (exact_types) {
    ASSERT_EQ(ties, 0) << "no token sequence without near-ties found";
  }

  Context ctx(model, {.n_ctx = 32, .n_batch = 512, .n_threads = 2});
  std::vector<float> ours;
  ctx.eval(tokens, ours, true);
  ASSERT_EQ(ours.size(), ref.size());
  // Per row: max_j |ours - ref| / max_j |ref|.
  const int64_t V = model->cfg.n_vocab, n = static_cast<int64_t>(tokens.size());
  std::vector<double> errs(n);
  for (int64_t r = 0; r < n; ++r)
    errs[r] = test::max_row_rel_err(std::span<const float>(ours).subspan(r * V, V),
                                    std::span<const float>(ref).subspan(r * V, V), V);
  double worst = 0;
  for (double e : errs) worst = test::nan_max(worst, e);
  const int64_t exact = std::count_if(errs.begin(), errs.end(), [](double e) { return e <= 1e-5; });
  std::printf("[forward-vs-ref] %-9s %-5s max_row_rel_err %.3e, rows <= 1e-5: %lld/%lld\n",
              c.arch.c_str(), std::string(type_name(c.type)).c_str(), worst,
              static_cast<long long>(exact), static_cast<long long>(n));
  if (exact_types) {
    // f32 products differ only in summation order; with rounded activations both
    // sides compute the same integer dot products once no rounding is near a tie.
    EXPECT_LE(worst, 1e-5);
  } else {
    // fp16/bf16 activations: a value within float noise of an fp16 boundary rounds
    // the other way and moves a row by ~2^-11 of one activation's contribution.
    EXPECT_LE(worst, 2e-3);
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  for (const char* a : {"qwen3moe", "olmoe", "llama", "qwen3", "qwen2moe", "gpt-oss", "deepseek2"})
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                       GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K,
                       GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::MXFP4})
      v.push_back({a, t});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, ForwardVsReference, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           std::string a = info.param.arch;
                           for (auto& ch : a) if (ch == '-') ch = '_';
                           return a + "_" + std::string(type_name(info.param.type));
                         });

// Sliding-window attention with sinks against the reference for several window
// sizes, on sequences that run well past the window.
TEST(Forward, SlidingWindowAndSinksAgreeWithReference) {
  for (int64_t window : {1, 2, 5, 9}) {
    SynthOptions o = small({"gpt-oss", GgmlType::F32});
    o.n_swa = window;
    auto model = load_model(test::synth(o, "swa_" + std::to_string(window)));
    ASSERT_EQ(model->cfg.n_swa, window);
    auto tokens = test::random_tokens(14, model->cfg.n_vocab, 40 + window);
    Context ctx(model, {.n_ctx = 16, .n_threads = 2});
    std::vector<float> ours;
    ctx.eval(tokens, ours, true);
    std::vector<float> ref = reference::forward(*model, tokens);
    EXPECT_LE(test::max_row_rel_err(ours, ref, model->cfg.n_vocab), 1e-5) << "window " << window;
  }
}

TEST(Forward, BatchEqualsOneTokenAtATime) {
  for (const char* arch : {"qwen3moe", "llama"}) {
    auto model = load_model(test::synth(small({arch, GgmlType::F32}), std::string("seq_") + arch));
    auto tokens = test::random_tokens(9, model->cfg.n_vocab, 5);
    Context batch(model, {.n_ctx = 16, .n_threads = 2});
    std::vector<float> all, one, seq;
    batch.eval(tokens, all, true);
    Context step(model, {.n_ctx = 16, .n_threads = 1});
    for (int32_t t : tokens) {
      step.eval(std::span<const int32_t>(&t, 1), one, false);
      seq.insert(seq.end(), one.begin(), one.end());
    }
    EXPECT_LE(test::max_row_rel_err(seq, all, model->cfg.n_vocab), 1e-5) << arch;
  }
}

TEST(Forward, ContextOverflowIsAClearError) {
  auto model = load_model(test::synth(small({"qwen3moe", GgmlType::F32}), "overflow"));
  Context ctx(model, {.n_ctx = 4, .n_threads = 1});
  std::vector<float> logits;
  auto tokens = test::random_tokens(5, model->cfg.n_vocab, 1);
  try {
    ctx.eval(tokens, logits, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  const int32_t bad[1] = {static_cast<int32_t>(model->cfg.n_vocab)};
  EXPECT_THROW(ctx.eval(bad, logits, false), Error);
}

// Sparsity is real: NaN in every expert the router did not pick leaves the logits unchanged.
TEST(Forward, UnroutedExpertsAreNeverRead) {
  struct Run {
    const char* arch;
    GgmlType t;
  };
  for (Run run : {Run{"qwen3moe", GgmlType::F32}, Run{"qwen3moe", GgmlType::Q8_0},
                  Run{"olmoe", GgmlType::Q4_K}, Run{"llama", GgmlType::Q4_0},
                  Run{"qwen2moe", GgmlType::Q6_K}, Run{"gpt-oss", GgmlType::MXFP4},
                  Run{"deepseek2", GgmlType::Q8_0}}) {
    const GgmlType t = run.t;
    SynthOptions o = small({run.arch, t});
    o.n_expert = 16;
    o.n_expert_used = 2;
    const std::string path = test::synth(o, std::string("sparse_") + run.arch + "_" + std::string(type_name(t)));
    auto model = load_model(path);
    auto tokens = test::random_tokens(3, model->cfg.n_vocab, 11);
    Context ctx(model, {.n_ctx = 8, .n_threads = 2});
    ctx.set_record_routing(true);
    std::vector<float> clean;
    ctx.eval(tokens, clean, true);

    // Writable copy of the file with NaN written over unpicked experts.
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    auto file = std::make_shared<gguf::File>(gguf::File::parse(bytes, path + " (copy)"));
    int64_t poisoned = 0;
    for (int64_t il = model->cfg.n_dense_lead; il < model->cfg.n_layer; ++il) {
      std::set<int32_t> used(ctx.routing().experts[il].begin(), ctx.routing().experts[il].end());
      ASSERT_LT(used.size(), static_cast<size_t>(o.n_expert)) << "all experts used; test is vacuous";
      for (const char* name : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
        const auto* ti = file->tensor("blk." + std::to_string(il) + "." + name + ".weight");
        ASSERT_NE(ti, nullptr);
        const size_t per_expert = ti->nbytes / ti->ne[2];
        for (int32_t e = 0; e < o.n_expert; ++e) {
          if (used.count(e)) continue;
          uint8_t* p = const_cast<uint8_t*>(static_cast<const uint8_t*>(ti->data)) + e * per_expert;
          std::memset(p, 0xFF, per_expert);  // 0xFFFF... is NaN in f32/f16 and in fp16 block scales
          ++poisoned;
        }
      }
    }
    ASSERT_GT(poisoned, 0);
    auto poisoned_model = load_model(file);
    Context ctx2(poisoned_model, {.n_ctx = 8, .n_threads = 2});
    std::vector<float> after;
    ctx2.eval(tokens, after, true);
    ASSERT_EQ(after.size(), clean.size());
    EXPECT_EQ(0, std::memcmp(after.data(), clean.data(), clean.size() * 4))
        << type_name(t) << ": logits changed after poisoning unrouted experts";
    // And the poison is live: poisoning a used expert does change them.
    const int64_t il0 = model->cfg.n_dense_lead;
    const auto* ti = file->tensor("blk." + std::to_string(il0) + ".ffn_down_exps.weight");
    const int32_t e = ctx.routing().experts[il0][0];
    std::memset(const_cast<uint8_t*>(static_cast<const uint8_t*>(ti->data)) + e * (ti->nbytes / ti->ne[2]), 0xFF,
                ti->nbytes / ti->ne[2]);
    // Loaded again: the loader may have packed the weights into its own copy.
    Context ctx3(load_model(file), {.n_ctx = 8, .n_threads = 2});
    ctx3.eval(tokens, after, true);
    bool any_nan = false;
    for (float v : after) any_nan |= !std::isfinite(v);
    EXPECT_TRUE(any_nan) << "poisoning a routed expert should reach the logits";
  }
}

TEST(Forward, ThreadCountDoesNotChangeLogits) {
  auto model = load_model(test::synth(small({"qwen3moe", GgmlType::Q8_0}), "threads"));
  auto tokens = test::random_tokens(7, model->cfg.n_vocab, 3);
  std::vector<float> a, b;
  Context c1(model, {.n_ctx = 8, .n_threads = 1});
  c1.eval(tokens, a, true);
  Context c2(model, {.n_ctx = 8, .n_threads = 2});
  c2.eval(tokens, b, true);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
}

}  // namespace
}  // namespace moe

namespace moe {
namespace {

// Continuous batching: sequences decoded together in one batch give the logits
// each gives alone, and truncate() rewinds a sequence for prefix reuse.
TEST(Forward, MultiSequenceBatchEqualsSeparateRuns) {
  auto model = load_model(test::synth(small({"qwen3moe", GgmlType::Q8_0}), "multiseq"));
  const int64_t V = model->cfg.n_vocab;
  auto a = test::random_tokens(6, V, 21), b = test::random_tokens(4, V, 22);
  std::vector<float> la, lb;
  Context solo(model, {.n_ctx = 16, .n_threads = 2});
  solo.eval(a, la, true);
  solo.reset();
  solo.eval(b, lb, true);

  Context ctx(model, {.n_ctx = 16, .n_seq = 3, .n_threads = 2});
  // Step 1: the first 3 tokens of a (seq 2) and all of b (seq 0) in one batch.
  std::vector<BatchToken> batch;
  for (int i = 0; i < 3; ++i) batch.push_back({a[i], 2, i, true});
  for (int i = 0; i < 4; ++i) batch.push_back({b[i], 0, i, true});
  std::vector<float> out;
  ctx.decode(batch, out);
  ASSERT_EQ(out.size(), static_cast<size_t>(7 * V));
  auto row = [&](const std::vector<float>& v, int r) { return std::span<const float>(v).subspan(r * V, V); };
  for (int i = 0; i < 3; ++i) EXPECT_LE(test::max_row_rel_err(row(out, i), row(la, i), V), 1e-6);
  for (int i = 0; i < 4; ++i) EXPECT_LE(test::max_row_rel_err(row(out, 3 + i), row(lb, i), V), 1e-6);
  // Step 2: the rest of a, one token at a time, with logits only for the last.
  for (int i = 3; i < 6; ++i) {
    std::vector<BatchToken> one = {{a[i], 2, i, i == 5}};
    ctx.decode(one, out);
  }
  EXPECT_LE(test::max_row_rel_err(out, row(la, 5), V), 1e-6);
  EXPECT_EQ(ctx.n_past(2), 6);
  EXPECT_EQ(ctx.n_past(1), 0);
  // A position that does not continue its sequence is an error.
  std::vector<BatchToken> gap = {{a[0], 1, 5, true}};
  EXPECT_THROW(ctx.decode(gap, out), Error);
  // Prefix reuse: keep 2 tokens of seq 2, then re-feed a[2..5].
  ctx.truncate(2, 2);
  std::vector<BatchToken> rest;
  for (int i = 2; i < 6; ++i) rest.push_back({a[i], 2, i, i == 5});
  ctx.decode(rest, out);
  EXPECT_LE(test::max_row_rel_err(out, row(la, 5), V), 1e-6);
}

}  // namespace
}  // namespace moe

namespace moe {
namespace {

TEST(Forward, StageProfileAccountsForTheStages) {
  auto model = load_model(test::synth(small({"qwen2moe", GgmlType::Q8_0}), "profile"));
  auto tokens = test::random_tokens(6, model->cfg.n_vocab, 8);
  Context ctx(model, {.n_ctx = 8, .n_threads = 2});
  std::vector<float> logits;
  ctx.eval(tokens, logits, false);
  EXPECT_EQ(ctx.stage_times().total, 0.0) << "profiling is off by default";
  ctx.reset();
  ctx.set_profile(true);
  ctx.eval(tokens, logits, false);
  const StageTimes& t = ctx.stage_times();
  for (double v : {t.attention, t.route, t.dispatch, t.experts, t.combine, t.shared_expert, t.lm_head})
    EXPECT_GT(v, 0.0);
  EXPECT_LE(t.attention + t.route + t.dispatch + t.experts + t.combine + t.shared_expert + t.lm_head,
            t.total * 1.0001);
}

}  // namespace
}  // namespace moe

namespace moe {
namespace {

// The f16 KV cache: K/V rounded to half precision move the logits by about 2^-11
// relative; checked against the reference for standard, sliding-window + sink and
// latent (MLA) attention, and shown to really take the f16 path.
TEST(Forward, F16KvCacheStaysCloseToReference) {
  for (const char* arch : {"qwen3moe", "gpt-oss", "deepseek2"}) {
    auto model = load_model(test::synth(small({arch, GgmlType::F32}), std::string("kv16_") + arch));
    auto tokens = test::random_tokens(12, model->cfg.n_vocab, 77);
    std::vector<float> ref = reference::forward(*model, tokens);
    std::vector<float> l16, l32;
    Context c16(model, {.n_ctx = 16, .n_threads = 2, .kv_f16 = true});
    c16.eval(tokens, l16, true);
    Context c32(model, {.n_ctx = 16, .n_threads = 2});
    c32.eval(tokens, l32, true);
    const double err16 = test::max_row_rel_err(l16, ref, model->cfg.n_vocab);
    const double err32 = test::max_row_rel_err(l32, ref, model->cfg.n_vocab);
    std::printf("[kv-f16] %-9s f16 cache %.2e, f32 cache %.2e\n", arch, err16, err32);
    EXPECT_LE(err16, 5e-3) << arch;
    EXPECT_GT(err16, err32) << arch << ": the f16 cache should round";
  }
}

}  // namespace
}  // namespace moe

namespace moe {
namespace {

// The packed weight layouts (ops/pack.h) give the same logits as the weights as
// stored, on every kernel path (the portable fallback reads the packed layout
// too), and both agree with the scalar reference. The ForwardVsReference cases
// above already run packed models (load_model packs on AVX-512 machines); this
// checks the switch itself, that it engages, and the file layout beside it.
//
// Tolerance: every row within 1e-5 of the reference, except that one row may be
// off by up to 1e-3: the layouts sum in different orders, and the tie screening
// (kTieRel = 5e-7 of the reference) cannot see every kernel's float error, so
// one q8 activation rounding may flip (measured once: the unpacked AVX-512 Q4_K
// kernel, one row at 4.3e-4; all other rows <= 4e-7).
TEST(Forward, PackedWeightsMatchTheFileLayout) {
  auto check = [](const std::vector<float>& got, const std::vector<float>& ref, int64_t V,
                  const std::string& what) {
    const int64_t n = static_cast<int64_t>(ref.size()) / V;
    int64_t off = 0;
    double worst = 0;
    for (int64_t r = 0; r < n; ++r) {
      const double e = test::max_row_rel_err(std::span<const float>(got).subspan(r * V, V),
                                             std::span<const float>(ref).subspan(r * V, V), V);
      worst = moe::test::nan_max(worst, e);
      off += e > 1e-5;
    }
    EXPECT_LE(off, 1) << what << ": rows above 1e-5";
    EXPECT_LE(worst, 1e-3) << what;
  };
  for (const char* arch : {"qwen3moe", "deepseek2", "qwen2moe"}) {
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
      const std::string path = test::synth(small({arch, t}), std::string("pack_") + arch +
                                                                 std::string(type_name(t)));
      auto plain = load_model(path, {.pack = false, .progress = {}});
      EXPECT_EQ(plain->tensors_packed, 0);
      // Pack explicitly, whatever the CPU: the portable fallback must be right too.
      std::shared_ptr<Model> packed = load_model(path, {.pack = false, .progress = {}});
      pack_weights(*packed);
      ASSERT_GT(packed->tensors_packed, 0) << arch << " " << type_name(t);
      ASSERT_NE(packed->layers.back().gate_exps.packed, nullptr);
      // A token sequence with no activation rounding or expert choice near a tie.
      std::vector<int32_t> tokens;
      std::vector<float> ref;
      int64_t ties = 1;
      for (uint64_t seed = 5; seed < 45 && ties != 0; ++seed) {
        tokens = test::random_tokens(16, plain->cfg.n_vocab, seed);
        ref = reference::forward(*plain, tokens, true, &ties);
      }
      ASSERT_EQ(ties, 0) << "no token sequence without near-ties found";
      const int64_t V = plain->cfg.n_vocab;
      for (ops::KernelPath p : ops::available_kernel_paths()) {
        ops::KernelPathGuard guard(p);
        const std::string what =
            std::string(arch) + " " + std::string(type_name(t)) + " on " + ops::kernel_path_name(p);
        std::vector<float> want, got;
        Context(plain, {.n_ctx = 32, .n_threads = 2}).eval(tokens, want, true);
        Context(packed, {.n_ctx = 32, .n_threads = 2}).eval(tokens, got, true);
        check(want, ref, V, "file layout vs reference, " + what);
        check(got, ref, V, "packed vs reference, " + what);
        check(got, want, V, "packed vs file layout, " + what);
      }
    }
  }
}

}  // namespace
}  // namespace moe
