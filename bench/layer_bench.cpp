// Per-layer benchmarks: one MoE layer shaped like OLMoE-1B-7B (width 2048, 16
// heads of 128, 4 KV heads, 64 experts top-8 of width 1024) with a small
// vocabulary, so that the time is the layer's. Each weight type runs with the
// weights as stored in the file ("file") and repacked for the int8 kernels
// ("packed", ops/pack.h), in the same process, so the ratio is the packing's
// effect on this machine at this moment.
//
//   moe_microbench --benchmark_filter=layer_
//
// decode: one token at position 256 of one sequence (KV cache of 256 entries).
// batch8: one token for each of 8 sequences (continuous batching, one step).
// prefill64: 64 tokens of one sequence from an empty cache.
// Items/s are tokens/s. The model files are synthesized once into $TMPDIR.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"

namespace {

using moe::GgmlType;

std::string layer_model(GgmlType t) {
  static std::map<GgmlType, std::string> made;
  if (auto it = made.find(t); it != made.end()) return it->second;
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/moe-layer-bench-" +
                           std::string(moe::type_name(t)) + ".gguf";
  if (!std::filesystem::exists(path)) {
    moe::SynthOptions o;
    o.arch = "qwen3moe";
    o.n_layer = 1;
    o.n_embd = 2048;
    o.n_head = 16;
    o.n_head_kv = 4;
    o.head_dim = 128;
    o.n_vocab = 512;
    o.n_expert = 64;
    o.n_expert_used = 8;
    o.n_ff_exp = 1024;
    o.type = t;
    o.embd_type = GgmlType::F32;
    o.seed = 7;
    const std::string part = path + ".part";
    moe::synthesize_model(o, part);
    std::filesystem::rename(part, path);
  }
  return made[t] = path;
}

std::shared_ptr<const moe::Model> load(GgmlType t, bool packed) {
  static std::map<std::pair<GgmlType, bool>, std::shared_ptr<const moe::Model>> cache;
  auto& m = cache[{t, packed}];
  if (!m) m = moe::load_model(layer_model(t), {.pack = packed, .progress = {}});
  return m;
}

void fill(std::vector<moe::BatchToken>& batch, int n, int seqs, int64_t pos0, uint32_t seed) {
  std::mt19937 rng(seed);
  batch.clear();
  for (int i = 0; i < n; ++i) {
    const int seq = seqs > 1 ? i : 0;
    const int64_t pos = seqs > 1 ? pos0 : pos0 + i;
    batch.push_back({static_cast<int32_t>(rng() % 512), seq, pos, i == n - 1});
  }
}

// tokens per step, sequences, cached positions before the step
void bm_layer(benchmark::State& state, GgmlType t, bool packed, int tokens, int seqs, int64_t past) {
  auto model = load(t, packed);
  if (packed && model->tensors_packed == 0) {
    state.SkipWithError("no packed kernels for this type/CPU");
    return;
  }
  moe::Context ctx(model, {.n_ctx = 512, .n_seq = seqs, .n_batch = 512, .n_threads = 1});
  std::vector<float> logits;
  std::vector<moe::BatchToken> batch;
  // Fill each sequence's cache up to `past`.
  for (int s = 0; s < seqs && past > 0; ++s) {
    fill(batch, static_cast<int>(past), 1, 0, 11 + s);
    for (auto& b : batch) b.seq = s;
    ctx.decode(batch, logits);
  }
  fill(batch, tokens, seqs, past, 3);
  for (auto _ : state) {
    for (int s = 0; s < seqs; ++s) ctx.truncate(s, past);
    ctx.decode(batch, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * tokens);
}

void register_all() {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K}) {
    for (bool packed : {false, true}) {
      const std::string name = std::string("layer_") + std::string(moe::type_name(t)) + (packed ? "/packed" : "/file");
      benchmark::RegisterBenchmark((name + "/decode").c_str(), bm_layer, t, packed, 1, 1, 256)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark((name + "/batch8").c_str(), bm_layer, t, packed, 8, 8, 64)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark((name + "/prefill64").c_str(), bm_layer, t, packed, 64, 1, 0)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

const int registered = (register_all(), 0);

}  // namespace
