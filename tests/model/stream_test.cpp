// Streaming routed experts through the expert cache (model/expert_cache.h):
// logits with a budget of one slot per MoE layer and with a medium budget are
// bit-identical to the fully resident run, on every fixture model in
// ../shared/fixtures (every architecture and weight type there; a missing
// fixtures folder fails under CI=true) and on synthesized models (packed and
// unpacked slots, prefill and decode, with and without the prefetcher); the sparsity proof holds when streaming
// (NaN written on disk over the experts the router did not pick changes
// nothing); peak resident memory stays within the budget plus a stated overhead;
// the LFU-with-ageing policy beats LRU on a skewed trace.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/expert_cache.h"
#include "test_util.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(MOE_SHARED_DIR) / "fixtures";

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Logits of every position: `prefill` tokens in one batch, then one token at a time.
std::vector<float> run(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& tokens,
                       int64_t prefill, int64_t budget, int64_t* slots = nullptr, bool prefetch = false) {
  Context ctx(m, {.n_ctx = static_cast<int64_t>(tokens.size()), .n_batch = 512, .n_threads = 2,
                  .mem_budget = budget, .prefetch = prefetch});
  if (slots) *slots = ctx.expert_cache() ? ctx.expert_cache()->slots_per_layer() : 0;
  std::vector<float> all, part;
  const int64_t n = static_cast<int64_t>(tokens.size());
  prefill = std::min(prefill, n);
  ctx.eval(std::span(tokens).first(prefill), part, true);
  all = part;
  for (int64_t i = prefill; i < n; ++i) {
    ctx.eval(std::span(tokens).subspan(i, 1), part, true);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// The plan of a streamed model's context (resident, context, slot bytes).
ExpertCachePlan plan_of(const std::shared_ptr<const Model>& m, int64_t n_ctx, int64_t n_batch = 512) {
  Context ctx(m, {.n_ctx = n_ctx, .n_batch = n_batch, .n_threads = 2, .mem_budget = int64_t{1} << 40});
  return ctx.cache_plan();
}

LoadOptions streaming() {
  LoadOptions o;
  o.stream_experts = true;
  return o;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Resident vs streamed with one slot per layer and with about half the experts
// per layer, in prefill and in decode: the same bits. Returns a line for the log.
std::string expect_bit_identical(const std::string& path, const std::vector<int32_t>& tokens,
                                 bool pack) {
  auto resident = load_model(path, {.pack = pack, .progress = {}, .stream_experts = false});
  auto streamed = load_model(path, {.pack = pack, .progress = {}, .stream_experts = true});
  EXPECT_TRUE(streamed->experts_streamed);
  const int64_t n = static_cast<int64_t>(tokens.size());
  const ExpertCachePlan p = plan_of(streamed, n);
  const int64_t X = streamed->cfg.n_expert;
  std::string log;
  for (int64_t prefill : {n, std::min<int64_t>(n, 4)}) {
    const std::vector<float> want = run(resident, tokens, prefill, 0);
    EXPECT_TRUE(all_finite(want)) << path;
    for (int64_t slots : {int64_t{1}, std::max<int64_t>(1, X / 2), -std::max<int64_t>(1, X / 2)}) {
      const bool prefetch = slots < 0;  // the medium budget again, with the prefetcher
      slots = std::abs(slots);
      int64_t got_slots = 0;
      const int64_t budget = p.min_budget() + (slots - 1) * p.slot_bytes;
      const std::vector<float> got = run(streamed, tokens, prefill, budget, &got_slots, prefetch);
      EXPECT_EQ(got_slots, slots) << path;
      EXPECT_EQ(got.size(), want.size()) << path;
      if (got.size() != want.size()) continue;
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)))
          << path << ": streamed logits differ from the resident run (" << slots
          << " slots per layer, prefill " << prefill << " of " << n << " tokens, pack " << pack << ")";
      log += fmt::format(" slots={}{} prefill={}", slots, prefetch ? "+prefetch" : "", prefill);
    }
  }
  // One byte under the minimum is a clear error that states the minimum.
  try {
    Context ctx(streamed, {.n_ctx = n, .n_batch = 512, .n_threads = 2, .mem_budget = p.min_budget() - 1});
    ADD_FAILURE() << path << ": a budget under the minimum was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("below the minimum"), std::string::npos) << e.what();
  }
  return log;
}

TEST(Stream, FixturesBitIdentical) {
  if (!fs::exists(kFixtures / "manifest.json")) {
    if (in_ci()) FAIL() << "no fixtures at " << kFixtures << " (CI=true)";
    GTEST_SKIP() << "no fixtures at " << kFixtures;
  }
  std::ifstream f(kFixtures / "manifest.json");
  const nlohmann::json m = nlohmann::json::parse(f);
  // The longest token sequence of each model file.
  std::map<std::string, std::vector<int32_t>> models;
  for (const auto& c : m["cases"]) {
    auto toks = c["tokens"].get<std::vector<int32_t>>();
    auto& t = models[c["model"].get<std::string>()];
    if (toks.size() > t.size()) t = toks;
  }
  ASSERT_GE(models.size(), 10u);
  for (const auto& [file, tokens] : models) {
    const std::string path = (kFixtures / file).string();
    const std::string log = expect_bit_identical(path, tokens, /*pack=*/true);
    std::printf("[stream] %-26s %zu tokens bit-identical:%s\n", file.c_str(), tokens.size(), log.c_str());
  }
}

SynthOptions small(const std::string& arch, GgmlType t) {
  SynthOptions o;
  o.arch = arch;
  o.n_layer = arch == "deepseek2" ? 3 : 2;
  const bool k_quant = t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
  o.n_embd = k_quant ? 256 : 64;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.head_dim = k_quant ? 64 : 16;
  o.n_vocab = 300;
  o.std = 0;
  o.type = t;
  o.n_expert = 16;
  o.n_expert_used = 4;
  o.n_ff_exp = k_quant ? 256 : 64;
  o.n_ff_shexp = k_quant ? 256 : 64;
  o.n_ff = k_quant ? 256 : 96;
  if (arch == "deepseek2") {
    o.head_dim = 48;
    o.qk_rope = 16;
    o.kv_lora_rank = 64;
    o.q_lora_rank = 32;
    o.n_group = 4;
    o.n_group_used = 2;
    o.n_dense_lead = 1;
  }
  if (arch == "gpt-oss") {
    o.n_head = 8;
    o.n_swa = 3;
  }
  return o;
}

TEST(Stream, SynthesizedBitIdentical) {
  struct Run {
    const char* arch;
    GgmlType t;
  };
  for (Run r : {Run{"qwen3moe", GgmlType::Q8_0}, Run{"qwen3moe", GgmlType::F16},
                Run{"olmoe", GgmlType::Q4_K}, Run{"llama", GgmlType::Q4_0},
                Run{"qwen2moe", GgmlType::Q6_K}, Run{"gpt-oss", GgmlType::MXFP4},
                Run{"deepseek2", GgmlType::Q5_K}, Run{"qwen3moe", GgmlType::BF16}}) {
    const std::string name = std::string("stream_") + r.arch + "_" + std::string(type_name(r.t));
    const std::string path = test::synth(small(r.arch, r.t), name);
    const auto tokens = test::random_tokens(24, 300, 5);
    for (bool pack : {true, false}) {
      const std::string log = expect_bit_identical(path, tokens, pack);
      std::printf("[stream] %-26s pack=%d bit-identical:%s\n", name.c_str(), pack, log.c_str());
    }
  }
}

// The sparsity proof, streaming: the experts the router did not pick are
// overwritten with NaN in the file on disk; the streamed logits do not change.
TEST(Stream, UnroutedExpertsOnDiskAreNeverRead) {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::F32, GgmlType::Q4_K}) {
    const std::string path = test::synth(small("qwen3moe", t), "sparse_stream_" + std::string(type_name(t)));
    auto model = load_model(path);
    const auto tokens = test::random_tokens(3, model->cfg.n_vocab, 11);
    Context ctx(model, {.n_ctx = 8, .n_threads = 2});
    ctx.set_record_routing(true);
    std::vector<float> clean;
    ctx.eval(tokens, clean, true);
    ASSERT_TRUE(all_finite(clean));

    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    const gguf::File file = gguf::File::parse(bytes, path);
    int64_t poisoned = 0;
    for (int64_t il = 0; il < model->cfg.n_layer; ++il) {
      std::set<int32_t> used(ctx.routing().experts[il].begin(), ctx.routing().experts[il].end());
      ASSERT_LT(used.size(), static_cast<size_t>(model->cfg.n_expert)) << "all experts used; vacuous";
      for (const char* name : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
        const auto* ti = file.tensor("blk." + std::to_string(il) + "." + name + ".weight");
        ASSERT_NE(ti, nullptr);
        const size_t per = ti->nbytes / ti->ne[2];
        for (int32_t e = 0; e < model->cfg.n_expert; ++e) {
          if (used.count(e)) continue;
          std::memset(bytes.data() + file.data_offset() + ti->offset + e * per, 0xFF, per);
          ++poisoned;
        }
      }
    }
    ASSERT_GT(poisoned, 0);
    const std::string bad = path + ".poisoned.gguf";
    std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    auto streamed = load_model(bad, streaming());
    const ExpertCachePlan p = plan_of(streamed, 8);
    for (int64_t slots : {int64_t{1}, int64_t{8}}) {
      Context sctx(streamed, {.n_ctx = 8, .n_threads = 2, .mem_budget = p.min_budget() + (slots - 1) * p.slot_bytes});
      std::vector<float> after;
      sctx.eval(tokens, after, true);
      ASSERT_EQ(after.size(), clean.size());
      EXPECT_EQ(0, std::memcmp(after.data(), clean.data(), clean.size() * 4))
          << type_name(t) << ": streamed logits changed after poisoning unrouted experts on disk";
      EXPECT_GT(sctx.expert_cache()->stats().misses, 0);
    }
    // The poison is live: poisoning a routed expert on disk reaches the logits.
    const auto* ti = file.tensor("blk.0.ffn_down_exps.weight");
    const int32_t e = ctx.routing().experts[0][0];
    std::memset(bytes.data() + file.data_offset() + ti->offset + e * (ti->nbytes / ti->ne[2]), 0xFF,
                ti->nbytes / ti->ne[2]);
    std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    Context sctx(load_model(bad, streaming()), {.n_ctx = 8, .n_threads = 2, .mem_budget = p.min_budget()});
    std::vector<float> after;
    sctx.eval(tokens, after, true);
    EXPECT_FALSE(all_finite(after)) << "poisoning a routed expert on disk should reach the logits";
  }
}

int64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  return -1;
}

// Peak resident memory of a streamed run stays within the budget plus a stated
// overhead (code pages first executed, huge-page rounding of the packed weights
// and of the slots, the I/O threads, allocator bookkeeping: measured 3.5 MiB), on a
// model 4.5x the budget; the model's mapping holds no more than its resident
// (non-expert) bytes, so the routed experts' pages were never mapped in.
TEST(Stream, PeakRssStaysWithinBudget) {
  SynthOptions o = small("qwen3moe", GgmlType::Q8_0);
  o.n_embd = 256;
  o.head_dim = 64;
  o.n_ff_exp = 256;
  o.n_expert = 32;
  o.n_layer = 4;
  const std::string path = test::temp_dir() + "/stream_rss.gguf";
  // Written by a child process, so that none of the writer's memory is in ours.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      synthesize_model(o, path);
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));

  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";  // resets VmHWM to the current RSS
  }
  const int64_t base = status_kib("VmRSS") * 1024;
  const int64_t base_file = status_kib("RssFile") * 1024;
  int64_t budget = 0, allocated = 0, cache_limit = 0, rss_file = 0;
  int64_t mapped = 0, resident = 0;
  // Resident bytes of the model file's mapping (all its areas in /proc/self/smaps).
  auto map_rss = [&] {
    std::ifstream sm("/proc/self/smaps");
    std::string line;
    bool in = false;
    int64_t kib = 0;
    while (std::getline(sm, line)) {
      const bool header = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                          line.find('-') < line.find(' ');
      if (header) in = line.find(path) != std::string::npos;
      if (in && line.rfind("Rss:", 0) == 0) kib += std::stoll(line.substr(4));
    }
    return kib * 1024;
  };
  {
    auto model = load_model(path, streaming());
    const int64_t n_ctx = 64;
    const ExpertCachePlan p = plan_of(model, n_ctx, 32);
    budget = p.min_budget() + 3 * p.slot_bytes;  // 4 slots per layer of 32 experts
    std::printf("[stream] plan: resident %lld, context %lld, staging %lld, slot %lld bytes\n",
                static_cast<long long>(p.resident), static_cast<long long>(p.context),
                static_cast<long long>(p.staging), static_cast<long long>(p.slot_bytes));
    ASSERT_LT(budget * 3, file_bytes) << "the model should be several times the budget";
    Context ctx(model, {.n_ctx = n_ctx, .n_batch = 32, .n_threads = 2, .mem_budget = budget});
    ASSERT_EQ(ctx.expert_cache()->slots_per_layer(), 4);
    std::vector<float> logits;
    const auto tokens = test::random_tokens(32, model->cfg.n_vocab, 3);
    ctx.eval(tokens, logits, false);
    for (int i = 0; i < 16; ++i) {
      const int32_t one[1] = {tokens[i]};
      ctx.eval(one, logits, false);
    }
    EXPECT_GT(ctx.expert_cache()->stats().misses, 0);
    allocated = ctx.expert_cache()->allocated_bytes();
    cache_limit = budget - p.resident - p.context;
    rss_file = status_kib("RssFile") * 1024 - base_file;
    std::printf("[stream] RSS growth at the end of the run %.1f MiB (anon %.1f MiB)\n", (status_kib("VmRSS") * 1024 - base) / 1048576.0, status_kib("RssAnon") / 1024.0);
    mapped = map_rss();
    resident = p.resident;
  }
  const int64_t peak = status_kib("VmHWM") * 1024 - base;
  constexpr int64_t kOverhead = int64_t{8} << 20;
  std::printf("[stream] model %.1f MiB, budget %.1f MiB, cache allocated %.1f MiB (limit %.1f), "
              "peak RSS growth %.1f MiB (file-backed %.1f MiB, of it the model's mapping %.2f MiB), "
              "stated overhead %.0f MiB\n",
              file_bytes / 1048576.0, budget / 1048576.0, allocated / 1048576.0,
              cache_limit / 1048576.0, peak / 1048576.0, rss_file / 1048576.0, mapped / 1048576.0,
              kOverhead / 1048576.0);
  // The cache rounds its slot allocation up to a 2 MiB huge page.
  EXPECT_LE(allocated, cache_limit + (int64_t{2} << 20));
  EXPECT_LE(peak, budget + kOverhead);
  EXPECT_GE(mapped, 0);
  EXPECT_LE(mapped, resident) << "pages of the routed experts are mapped in";
  EXPECT_LT(rss_file, file_bytes / 4);
}

// LFU with ageing keeps a skewed (Zipf) layer's hot experts where LRU cycles them out.
TEST(Stream, LfuWithAgeingBeatsLruOnSkewedRouting) {
  const int64_t X = 64, K = 4, slots = 16;
  std::mt19937_64 rng(1);
  std::vector<double> w(X);
  for (int64_t e = 0; e < X; ++e) w[e] = 1.0 / std::pow(double(e + 1), 1.0);
  std::discrete_distribution<int32_t> zipf(w.begin(), w.end());
  std::vector<std::vector<int32_t>> trace;
  for (int t = 0; t < 4000; ++t) {
    std::set<int32_t> s;
    while (static_cast<int64_t>(s.size()) < K) s.insert(zipf(rng));
    trace.emplace_back(s.begin(), s.end());
  }
  auto hit_rate = [&](CachePolicy kind) {
    SlotPolicy p(X, slots, kind);
    std::vector<int32_t> owner(slots, -1);
    int64_t hits = 0, n = 0;
    int32_t slot[K];
    uint8_t hit[K];
    for (const auto& step : trace) {
      p.place(step, slot, hit);
      std::set<int32_t> used;
      for (int64_t i = 0; i < K; ++i) {
        EXPECT_TRUE(used.insert(slot[i]).second) << "two experts of one step share a slot";
        EXPECT_EQ(hit[i] != 0, owner[slot[i]] == step[i]) << "hit flag disagrees with the slot";
        owner[slot[i]] = step[i];
        EXPECT_EQ(p.slot_of(step[i]), slot[i]);
        hits += hit[i];
        ++n;
      }
    }
    return double(hits) / double(n);
  };
  const double lfu = hit_rate(CachePolicy::lfu_aged), lru = hit_rate(CachePolicy::lru);
  std::printf("[stream] Zipf(1.0) routing, %lld experts top-%lld, %lld slots: hit rate LFU+ageing %.3f, LRU %.3f\n",
              static_cast<long long>(X), static_cast<long long>(K), static_cast<long long>(slots), lfu, lru);
  EXPECT_GT(lfu, lru + 0.05);
}

}  // namespace
}  // namespace moe
