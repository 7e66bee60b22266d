// `moe bench`: prompt-processing (pp) and generation (tg) speed of a model, as
// llama-bench measures them, plus the machine's memory bandwidth and the
// fraction of the decode roofline reached:
//   pp: eval of p random tokens from an empty cache (one forward of p tokens);
//   tg: n single-token decode steps from an empty cache;
//   bandwidth: STREAM-like copy and read over arrays >> LLC with the same thread
//     count, best of 3 tries before and 3 after the runs, and best of 2 just before
//     and just after every tg repetition (the same window); copy counts bytes read +
//     bytes written;
//   tg roofline fraction = tg tokens/s * active weight bytes per token / peak, where
//     peak is the highest of all those copy and read samples. A fraction of
//     bandwidth is never above 1: where it would be, the probe was no bound for the
//     run (weights served from cache, or every sample starved by other load) and
//     the fraction is withheld (null in --json) with the reason.
// Medians over -r repetitions. --profile adds the time per stage measured through
// the ops profiling hook (ops/cpu/profile.h): every gemm call is attributed to the
// weight tensor it reads (attention projections, router, experts, dense FFN,
// lm_head) and activation rounding is timed; the rest of the wall time (attention
// core, norms, RoPE, top-k, dispatch copies, combine) is reported as "other".
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/cpu_features.h"
#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"
#include "model/context.h"
#include "model/model.h"
#include "ops/cpu/profile.h"
#include "ops/quant.h"
#include "tools/commands.h"

namespace moe::tools {
namespace {

struct BenchOptions {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;
  int reps = 3;
  int seqs = 1;  // tg: sequences decoded together (one token each per step)
  bool json = false;
  bool profile = false;
  int64_t bw_mib = 512;  // per array
  std::string kv_type = "f32";
  std::string mem;  // --mem: stream the routed experts through an expert cache
  std::string policy = "lfu";  // --cache-policy
  bool prefetch = false;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- memory bandwidth ------------------------------------------------------------

struct Bandwidth {
  double copy = 0, read = 0;  // bytes/s
};

// Runs fn(thread, begin, end) over [0, n) split in nt equal parts, one std::thread
// each (the caller runs part 0); returns the wall time.
template <class F>
double run_split(int nt, size_t n, F&& fn) {
  std::vector<std::thread> ts;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  const size_t part = (n / nt + 4095) / 4096 * 4096;
  auto body = [&](int t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) {
    }
    const size_t b = std::min(n, t * part), e = std::min(n, b + part);
    fn(t, b, e);
  };
  for (int t = 1; t < nt; ++t) ts.emplace_back(body, t);
  while (ready.load() < nt - 1) {
  }
  const auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  body(0);
  ready.fetch_add(-1);
  for (auto& t : ts) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

__attribute__((noinline)) uint64_t read_sum(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

// Two arrays of `mib` MiB each, faulted in on the threads that use them, kept for
// the whole run so that a copy sample can be taken next to every tg repetition.
class BandwidthProbe {
 public:
  BandwidthProbe(int nt, int64_t mib)
      : nt_(nt), bytes_(static_cast<size_t>(mib) << 20), a_(bytes_ / 8), b_(bytes_ / 8) {
    run_split(nt_, bytes_, [&](int, size_t lo, size_t hi) {
      std::memset(reinterpret_cast<char*>(a_.data()) + lo, 1, hi - lo);
      std::memset(reinterpret_cast<char*>(b_.data()) + lo, 2, hi - lo);
    });
  }
  // One copy of a into b: bytes read + written per second.
  double copy() {
    const double t = run_split(nt_, bytes_, [&](int, size_t lo, size_t hi) {
      std::memcpy(reinterpret_cast<char*>(b_.data()) + lo, reinterpret_cast<const char*>(a_.data()) + lo, hi - lo);
    });
    return 2.0 * static_cast<double>(bytes_) / t;
  }
  double read() {
    std::atomic<uint64_t> sink{0};
    const double t = run_split(nt_, bytes_, [&](int, size_t lo, size_t hi) {
      sink.fetch_add(read_sum(a_.data() + lo / 8, (hi - lo) / 8), std::memory_order_relaxed);
    });
    return static_cast<double>(bytes_) / t;
  }
  // Best of `tries` copy and read samples.
  Bandwidth best(int tries) {
    Bandwidth bw;
    for (int i = 0; i < tries; ++i) {
      bw.copy = std::max(bw.copy, copy());
      bw.read = std::max(bw.read, read());
    }
    return bw;
  }

 private:
  int nt_;
  size_t bytes_;
  std::vector<uint64_t> a_, b_;
};

// ---- profile: attribute gemm time to the tensor read -------------------------------

enum Stage { kAttnProj, kRouter, kExperts, kDenseFfn, kLmHead, kOtherGemm, kActQuant, kNumStages };
const char* const kStageNames[kNumStages] = {"attention_proj", "route_gemm", "experts_gemm",
                                             "dense_ffn_gemm", "lm_head",    "other_gemm",
                                             "act_quant"};

struct Range {
  const uint8_t* lo;
  const uint8_t* hi;
  Stage stage;
};
std::vector<Range> g_ranges;  // sorted by lo; written before the hook is set
std::atomic<int64_t> g_stage_ns[kNumStages];
std::atomic<int64_t> g_stage_calls[kNumStages];

void profile_hook(const void* W, int64_t, int64_t, int64_t ns) {
  Stage s = kOtherGemm;
  if (W == nullptr) {
    s = kActQuant;
  } else {
    const auto* p = static_cast<const uint8_t*>(W);
    auto it = std::upper_bound(g_ranges.begin(), g_ranges.end(), p,
                               [](const uint8_t* v, const Range& r) { return v < r.lo; });
    if (it != g_ranges.begin() && p < std::prev(it)->hi) s = std::prev(it)->stage;
  }
  g_stage_ns[s].fetch_add(ns, std::memory_order_relaxed);
  g_stage_calls[s].fetch_add(1, std::memory_order_relaxed);
}

size_t tensor_bytes(const Tensor& t) {
  return t.present() ? t.matrix_bytes * static_cast<size_t>(t.ne[2] * t.ne[3]) : 0;
}

void build_ranges(const Model& m) {
  g_ranges.clear();
  auto add = [](const Tensor& t, Stage s) {
    if (t.present()) g_ranges.push_back({t.data, t.data + tensor_bytes(t), s});
    if (t.packed)
      g_ranges.push_back({t.packed, t.packed + t.packed_matrix_bytes * t.ne[2] * t.ne[3], s});
  };
  for (const auto& L : m.layers) {
    add(L.wq, kAttnProj);
    add(L.wk, kAttnProj);
    add(L.wv, kAttnProj);
    add(L.wo, kAttnProj);
    for (const Tensor* t : {&L.wq_a, &L.wq_b, &L.wkv_a, &L.wk_b, &L.wv_b}) add(*t, kAttnProj);
    add(L.gate_inp, kRouter);
    add(L.gate_exps, kExperts);
    add(L.up_exps, kExperts);
    add(L.down_exps, kExperts);
    add(L.gate_shexp, kExperts);
    add(L.up_shexp, kExperts);
    add(L.down_shexp, kExperts);
    add(L.ffn_gate, kDenseFfn);
    add(L.ffn_up, kDenseFfn);
    add(L.ffn_down, kDenseFfn);
  }
  add(m.output, kLmHead);
  std::sort(g_ranges.begin(), g_ranges.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
}

void reset_profile() {
  for (int s = 0; s < kNumStages; ++s) {
    g_stage_ns[s] = 0;
    g_stage_calls[s] = 0;
  }
}

// Touch every page of every weight tensor so that timing does not include page
// faults (routed experts only when resident: streamed ones stay on disk).
uint64_t touch_weights(const Model& m) {
  uint64_t s = 0;
  auto touch = [&](const Tensor& t) {  // the copy the kernels read: packed, else the file
    const uint8_t* p = t.packed ? t.packed : t.data;
    const size_t n = t.packed ? t.packed_matrix_bytes * t.ne[2] * t.ne[3] : tensor_bytes(t);
    for (size_t i = 0; i < n; i += 4096) s += p[i];
  };
  touch(m.tok_embd);
  touch(m.output);
  for (const auto& L : m.layers)
    for (const Tensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.q_norm,
                            &L.k_norm, &L.ffn_norm, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.gate_inp,
                            &L.gate_exps, &L.up_exps, &L.down_exps, &L.gate_shexp, &L.up_shexp,
                            &L.down_shexp, &L.gate_inp_shexp, &L.wq_a, &L.wq_b, &L.wkv_a,
                            &L.wk_b, &L.wv_b}) {
      const bool routed = t == &L.gate_exps || t == &L.up_exps || t == &L.down_exps;
      if (!(routed && m.experts_streamed)) touch(*t);
    }
  return s;
}

struct StageSplit {
  double wall = 0;                    // seconds per token (tg) or per prompt (pp)
  double thread_s[kNumStages] = {};   // thread-seconds per stage
  StageTimes forward;                 // wall seconds per forward-pass stage (Context profile)
};

// The forward pass's own stage split, per token or per prompt.
std::vector<std::pair<const char*, double>> forward_stages(const StageTimes& t) {
  return {{"attention", t.attention}, {"route", t.route},         {"dispatch", t.dispatch},
          {"experts", t.experts},     {"combine", t.combine},     {"shared_expert", t.shared_expert},
          {"dense_ffn", t.dense_ffn}, {"lm_head", t.lm_head},     {"total", t.total}};
}

// Expert cache counters over one phase (pp or tg), summed over repetitions.
struct CacheTotals {
  int64_t hits = 0, misses = 0, bytes = 0, tokens = 0, prefetched = 0, pred_acc = 0, pred_hits = 0;
  double seconds = 0, wall = 0, stall = 0;
  void add(const ExpertCacheStats& s, int64_t n_tokens, double wall_s) {
    prefetched += s.prefetched;
    pred_acc += s.predicted_accesses;
    pred_hits += s.predicted_hits;
    stall += s.stall_seconds;
    hits += s.hits;
    misses += s.misses;
    bytes += s.bytes_read;
    seconds += s.read_seconds;
    tokens += n_tokens;
    wall += wall_s;
  }
  double hit_rate() const { return hits + misses > 0 ? double(hits) / double(hits + misses) : 0.0; }
  double bytes_per_token() const { return tokens > 0 ? double(bytes) / double(tokens) : 0.0; }
  double disk_bw() const { return seconds > 0 ? double(bytes) / seconds : 0.0; }
  double read_share() const { return wall > 0 ? seconds / wall : 0.0; }
  double stall_share() const { return wall > 0 ? stall / wall : 0.0; }
  double accuracy() const { return pred_acc > 0 ? double(pred_hits) / double(pred_acc) : 0.0; }
  nlohmann::json json() const {
    return {{"hit_rate", hit_rate()}, {"hits", hits}, {"misses", misses},
            {"bytes_read_per_token", bytes_per_token()}, {"disk_read_bytes_per_s", disk_bw()},
            {"read_time_fraction", read_share()}, {"stall_time_fraction", stall_share()},
            {"prefetched_experts", prefetched}, {"prefetch_accuracy", accuracy()}};
  }
};

void bench(const BenchOptions& o) {
  Timer t_load;
  const int64_t mem = mem_bytes(o.mem);
  LoadOptions lo;
  lo.stream_experts = mem > 0;
  auto model = load_model(o.model, lo);
  const double load_s = t_load.seconds();
  const ModelConfig& c = model->cfg;
  volatile uint64_t sink = touch_weights(*model);
  (void)sink;

  // Bandwidth before and after the runs (best of both): the machines are shared,
  // and one low reading would inflate the roofline fraction.
  Context ctx(model, {.n_ctx = std::max(16, o.n_prompt + o.n_gen + 1),
                      .n_seq = o.seqs,
                      .n_batch = std::max(o.seqs, o.n_prompt),
                      .n_threads = o.threads,
                      .kv_f16 = o.kv_type == "f16",
                      .mem_budget = mem,
                      .cache_policy = o.policy == "lru" ? CachePolicy::lru : CachePolicy::lfu_aged,
                      .prefetch = o.prefetch});
  const int nt = ctx.pool().size();
  ExpertCache* cache = ctx.expert_cache();
  CacheTotals cache_pp, cache_tg;
  BandwidthProbe probe(nt, o.bw_mib);
  const Bandwidth bw0 = probe.best(3);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.n_vocab - 1));
  std::vector<float> logits;

  auto run_pp = [&] {
    std::vector<int32_t> ids(o.n_prompt);
    for (auto& t : ids) t = tok(rng);
    ctx.reset();
    Timer t;
    ctx.eval(ids, logits, false);
    return t.seconds();
  };
  // tg: n_gen steps; with --seqs N each step is one batch of N tokens, one per
  // sequence (what the server's continuous batching runs), all with logits.
  std::vector<BatchToken> step(o.seqs);
  auto run_tg = [&] {
    ctx.reset();
    Timer t;
    for (int i = 0; i < o.n_gen; ++i) {
      for (int s = 0; s < o.seqs; ++s) step[s] = {tok(rng), s, i, true};
      ctx.decode(step, logits);
    }
    return t.seconds();
  };

  // Warm-up: one short decode run and (if asked) one prompt run.
  {
    ctx.reset();
    const int32_t one[1] = {tok(rng)};
    ctx.eval(one, logits, false);
    if (o.n_prompt > 0) run_pp();
  }
  // Each tg repetition sits between two best-of-2 samples, so the peak covers the
  // bandwidth state the repetitions ran in (this VM's bandwidth drifts by up to 1.5x
  // within a minute). A mean of single short samples is no bound: on a loaded
  // machine one preempted copy thread halves a sample, and the fraction paired with
  // it once read 282%.
  std::vector<double> pp_tps, tg_tps, tg_bw;
  const double active = static_cast<double>(model->bytes_active_per_token);
  for (int r = 0; r < o.reps; ++r) {
    if (o.n_prompt > 0) {
      if (cache) cache->reset_stats();
      const double s = run_pp();
      pp_tps.push_back(o.n_prompt / s);
      if (cache) cache_pp.add(cache->stats(), o.n_prompt, s);
    }
    if (o.n_gen > 0) {
      const Bandwidth before = probe.best(2);
      if (cache) cache->reset_stats();
      const double s = run_tg();
      tg_tps.push_back(static_cast<double>(o.n_gen) * o.seqs / s);
      if (cache) cache_tg.add(cache->stats(), int64_t{o.n_gen} * o.seqs, s);
      const Bandwidth after = probe.best(2);
      tg_bw.push_back(std::max({before.copy, before.read, after.copy, after.read}));
    }
  }
  const double pp = median(pp_tps), tg = median(tg_tps);

  StageSplit prof_pp, prof_tg;
  if (o.profile) {
    build_ranges(*model);
    auto collect = [&](StageSplit& s, double wall, double per) {
      s.wall = wall / per;
      s.forward = ctx.stage_times();
      for (auto* v : {&s.forward.attention, &s.forward.route, &s.forward.dispatch, &s.forward.experts,
                      &s.forward.combine, &s.forward.shared_expert, &s.forward.dense_ffn,
                      &s.forward.lm_head, &s.forward.total})
        *v /= per;
      ctx.reset_stage_times();
      for (int i = 0; i < kNumStages; ++i) s.thread_s[i] = static_cast<double>(g_stage_ns[i].load()) * 1e-9 / per;
    };
    ops::set_profile_hook(profile_hook);
    ctx.set_profile(true);
    ctx.reset_stage_times();
    if (o.n_prompt > 0) {
      reset_profile();
      collect(prof_pp, run_pp(), 1.0);
    }
    if (o.n_gen > 0) {
      reset_profile();
      collect(prof_tg, run_tg(), static_cast<double>(o.n_gen) * o.seqs);
    }
    ops::set_profile_hook(nullptr);
    ctx.set_profile(false);
  }

  Bandwidth bw = probe.best(3);
  bw.copy = std::max(bw.copy, bw0.copy);
  bw.read = std::max(bw.read, bw0.read);
  // Routing skew as measured: per MoE layer, the share of routed tokens that went
  // to the most popular eighth of the experts (uniform routing: about 1/8), averaged.
  double top_eighth = 0;
  {
    int64_t layers = 0;
    for (const auto& load : ctx.expert_load()) {
      std::vector<int64_t> v(load);
      std::sort(v.rbegin(), v.rend());
      int64_t all = 0, top = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        all += v[i];
        if (i < std::max<size_t>(1, v.size() / 8)) top += v[i];
      }
      if (all == 0) continue;
      top_eighth += double(top) / double(all);
      ++layers;
    }
    if (layers > 0) top_eighth /= double(layers);
  }
  double peak = std::max(bw.copy, bw.read);
  for (double b : tg_bw) peak = std::max(peak, b);
  // tg with --seqs N: one token's active bytes per step (the step reads at least
  // those, once for all N tokens), so the fraction is never overstated.
  const double streamed = tg / o.seqs * active;  // weight bytes per second
  const double roof = peak > 0 ? streamed / peak : 0.0;
  const bool roof_valid = o.n_gen > 0 && roof > 0 && roof <= 1.0;
  const char* roof_note =
      o.n_gen == 0 ? "no tg run"
      : roof_valid ? ""
                   : "decode streamed weights faster than any bandwidth sample: the weights are served "
                     "from cache or every sample was starved, so the probe is no bound for this run";
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const int64_t peak_rss = static_cast<int64_t>(ru.ru_maxrss) * 1024;
  const char* kname = ops::kernel_name(c.n_layer > 0 ? model->layers[0].wq.type : model->output.type);

  auto stage_json = [&](const StageSplit& s) {
    nlohmann::json j;
    j["wall_s"] = s.wall;
    double accounted = 0;
    for (int i = 0; i < kNumStages; ++i) {
      // gemm stages run in parallel regions: wall share ~ thread-seconds / threads;
      // activation rounding runs on the calling thread only.
      const double w = i == kActQuant ? s.thread_s[i] : s.thread_s[i] / nt;
      j[kStageNames[i]] = w;
      accounted += w;
    }
    j["other_s"] = std::max(0.0, s.wall - accounted);
    for (const auto& [name, v] : forward_stages(s.forward)) j["forward"][name] = v;
    return j;
  };

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["arch"] = c.arch;
    j["n_layer"] = c.n_layer;
    j["n_expert"] = c.n_expert;
    j["n_expert_used"] = c.n_expert_used;
    j["weight_type"] = type_name(c.n_layer > 0 ? model->layers[0].wq.type : model->output.type);
    j["kernel"] = kname;
    j["kernel_path"] = ops::kernel_path_name(ops::active_kernel_path());
    j["packed_tensors"] = model->tensors_packed;
    j["packed_bytes"] = model->bytes_packed;
    j["amx"] = amx_status_name(amx_status());
    j["threads"] = nt;
    j["seqs"] = o.seqs;
    j["kv_type"] = o.kv_type;
    j["n_prompt"] = o.n_prompt;
    j["n_gen"] = o.n_gen;
    j["reps"] = o.reps;
    j["pp_tokens_per_s"] = pp;
    j["tg_tokens_per_s"] = tg;
    j["pp_samples"] = pp_tps;
    j["tg_samples"] = tg_tps;
    j["active_bytes_per_token"] = model->bytes_active_per_token;
    j["total_bytes"] = model->bytes_total;
    j["bandwidth_bytes_per_s"] = bw.copy;
    j["read_bandwidth_bytes_per_s"] = bw.read;
    j["peak_bandwidth_bytes_per_s"] = peak;
    j["tg_weight_bytes_per_s"] = streamed;
    j["tg_roofline_fraction"] = roof_valid ? nlohmann::json(roof) : nlohmann::json(nullptr);
    if (!roof_valid) j["tg_roofline_note"] = roof_note;
    j["tg_bandwidth_samples"] = tg_bw;
    j["peak_rss_bytes"] = peak_rss;
    j["load_s"] = load_s;
    if (c.is_moe()) j["routing_top_eighth_share"] = top_eighth;
    if (cache) {
      const ExpertCachePlan& p = ctx.cache_plan();
      j["mem_budget_bytes"] = p.budget;
      j["resident_weight_bytes"] = p.resident;
      j["expert_cache_bytes"] = cache->allocated_bytes();
      j["expert_slots_per_layer"] = cache->slots_per_layer();
      j["direct_io"] = cache->direct_io();
      j["cache_policy"] = o.policy;
      if (o.n_prompt > 0) j["cache_pp"] = cache_pp.json();
      if (o.n_gen > 0) j["cache_tg"] = cache_tg.json();
      // Top-level keys for the decode phase (what --mem is mostly about).
      const CacheTotals& main = o.n_gen > 0 ? cache_tg : cache_pp;
      j["hit_rate"] = main.hit_rate();
      j["prefetch"] = o.prefetch;
      j["prefetch_accuracy"] = main.accuracy();
      j["bytes_read_per_token"] = main.bytes_per_token();
      j["disk_read_bytes_per_s"] = main.disk_bw();
    }
    if (o.profile) {
      if (o.n_prompt > 0) j["profile_pp"] = stage_json(prof_pp);
      if (o.n_gen > 0) j["profile_tg_per_token"] = stage_json(prof_tg);
    }
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("model        {} ({}, {} layers, {} experts top-{}, {})\n", o.model, c.arch, c.n_layer,
             c.n_expert, c.n_expert_used, kname);
  fmt::print("threads      {}{}, KV cache {}\n", nt,
             o.seqs > 1 ? fmt::format(", tg decodes {} sequences per step", o.seqs) : "", o.kv_type);
  fmt::print("kernels      {}, {} tensors packed ({:.1f} MB), AMX {}\n",
             ops::kernel_path_name(ops::active_kernel_path()), model->tensors_packed,
             model->bytes_packed / 1e6, amx_status_name(amx_status()));
  auto samples = [](const std::vector<double>& v, double scale = 1.0) {
    std::string s;
    for (double x : v) s += fmt::format(" {:.2f}", x * scale);
    return s;
  };
  fmt::print("pp{:<4}       {:.2f} tokens/s   (median of {}:{})\n", o.n_prompt, pp, pp_tps.size(), samples(pp_tps));
  fmt::print("tg{:<4}       {:.2f} tokens/s   (median of {}:{})\n", o.n_gen, tg, tg_tps.size(), samples(tg_tps));
  fmt::print("active bytes {:.1f} MB/token (total weights {:.1f} MB)\n", active / 1e6, model->bytes_total / 1e6);
  fmt::print("bandwidth    copy {:.2f} GB/s, read {:.2f} GB/s ({} threads, 2 x {} MiB, best of 3 before + 3 after the runs)\n",
             bw.copy / 1e9, bw.read / 1e9, nt, o.bw_mib);
  if (!tg_bw.empty())
    fmt::print("             around each tg repetition (best of copy and read, GB/s):{}\n", samples(tg_bw, 1e-9));
  if (roof_valid)
    fmt::print("tg roofline  {:.1f}% of the peak bandwidth sample ({:.2f} GB/s), weights streamed at {:.2f} GB/s\n",
               100 * roof, peak / 1e9, streamed / 1e9);
  else if (o.n_gen > 0)
    fmt::print("tg roofline  withheld: weights streamed at {:.2f} GB/s, peak sample {:.2f} GB/s; {}\n",
               streamed / 1e9, peak / 1e9, roof_note);
  fmt::print("peak RSS     {:.1f} MB\n", peak_rss / 1e6);
  if (c.is_moe())
    fmt::print("routing      the most popular eighth of the experts took {:.1f}% of the routed tokens "
               "(layer mean; uniform: 12.5%)\n", 100 * top_eighth);
  if (cache) {
    const ExpertCachePlan& p = ctx.cache_plan();
    fmt::print("expert cache budget {:.1f} MiB: resident weights {:.1f} MiB, KV cache + scratch {:.1f} MiB, "
               "cache {:.1f} MiB ({} slots per MoE layer of {} experts), {} reads\n",
               p.budget / 1048576.0, p.resident / 1048576.0, p.context / 1048576.0,
               cache->allocated_bytes() / 1048576.0, cache->slots_per_layer(), c.n_expert,
               cache->direct_io() ? "O_DIRECT" : "buffered");
    auto line = [](const char* what, const CacheTotals& t) {
      fmt::print("cache {}     hit rate {:.1f}% ({} hits, {} misses), {:.2f} MB read from disk per token, "
                 "disk {:.2f} GB/s, I/O busy {:.0f}% / compute waiting {:.0f}% of the time, "
                 "{} experts prefetched, prediction accuracy {:.1f}%\n",
                 what, 100 * t.hit_rate(), t.hits, t.misses, t.bytes_per_token() / 1e6,
                 t.disk_bw() / 1e9, 100 * t.read_share(), 100 * t.stall_share(), t.prefetched,
                 100 * t.accuracy());
    };
    if (o.n_prompt > 0) line("pp", cache_pp);
    if (o.n_gen > 0) line("tg", cache_tg);
  }
  if (o.profile) {
    auto show = [&](const char* what, const StageSplit& s) {
      fmt::print("profile {}: wall {:.3f} ms\n", what, s.wall * 1e3);
      double accounted = 0;
      for (int i = 0; i < kNumStages; ++i) {
        const double w = i == kActQuant ? s.thread_s[i] : s.thread_s[i] / nt;
        accounted += w;
        if (s.thread_s[i] > 0)
          fmt::print("  {:<16} {:9.3f} ms  {:5.1f}%\n", kStageNames[i], w * 1e3, 100 * w / s.wall);
      }
      const double other = std::max(0.0, s.wall - accounted);
      fmt::print("  {:<16} {:9.3f} ms  {:5.1f}%  (attention core, norms, rope, top-k, dispatch, combine)\n",
                 "other", other * 1e3, 100 * other / s.wall);
      fmt::print("  forward-pass stages (wall):");
      for (const auto& [name, v] : forward_stages(s.forward)) fmt::print(" {} {:.3f} ms", name, v * 1e3);
      fmt::print("\n");
    };
    if (o.n_prompt > 0) show("pp (per prompt)", prof_pp);
    if (o.n_gen > 0) show("tg (per token)", prof_tg);
  }
}

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed, "
                                          "memory bandwidth and the decode roofline fraction");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens (0: skip pp)")->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "Generated tokens (0: skip tg)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  cmd->add_option("-r,--reps", o->reps, "Repetitions (median reported)")->capture_default_str();
  cmd->add_option("--seqs", o->seqs,
                  "tg: decode this many sequences together, one token each per step "
                  "(continuous batching; tokens/s counts all of them; the roofline "
                  "fraction counts one token's active bytes per step, a lower bound of "
                  "the bytes read)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--bw-mib", o->bw_mib, "MiB per array of the bandwidth measurement")->capture_default_str();
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f32, or f16 (half the memory)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  add_mem_option(cmd, o->mem);
  cmd->add_option("--cache-policy", o->policy,
                  "With --mem: expert cache eviction, lfu (LFU with ageing) or lru (the baseline)")
      ->check(CLI::IsMember({"lfu", "lru"}))
      ->capture_default_str();
  cmd->add_flag("--prefetch", o->prefetch,
                "With --mem: read the experts layer l+1's router picks for layer l's input "
                "ahead of need, on the cache's I/O thread");
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->add_flag("--profile", o->profile, "Add the time per stage");
  cmd->callback([o] {
    MOE_CHECK(o->reps > 0, "bench: -r must be positive");
    MOE_CHECK(o->n_prompt >= 0 && o->n_gen >= 0, "bench: -p and -n must be >= 0");
    bench(*o);
  });
}

}  // namespace

MOE_REGISTER_COMMAND(bench, register_bench);

}  // namespace moe::tools
