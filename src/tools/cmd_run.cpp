// `moe run` (generate text or token ids) and `moe logits` (dump all logits of a
// token sequence as raw little-endian float32 [n_tokens, n_vocab]). Both run expert-
// parallel under mpirun: every rank computes its share of the experts and the same
// logits; rank 0 writes the outputs (the other ranks' stdout goes to /dev/null).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "base/log.h"
#include "base/mmap.h"
#include "gguf/gguf.h"
#include "base/timer.h"
#include "dist/runtime.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "tools/commands.h"
#ifdef MOE_HAVE_TOKENIZER
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#endif

namespace moe::tools {
namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    try {
      size_t used = 0;
      long long v = std::stoll(tok, &used);
      MOE_CHECK(used == tok.size() && v >= 0 && v <= INT32_MAX, "bad token id '{}'", tok);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::logic_error&) {
      throw_error("bad token id '{}' in --tokens (expected space-separated integers)", tok);
    }
  }
  return ids;
}

struct RunOptions {
  std::string model, prompt, tokens;
  int n_predict = 64;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t batch = 512;
  SamplerParams sp;
  bool ids_only = false;
  std::string kv_type = "f32";
  std::string mem;  // --mem
};

}  // namespace

// Loads a model; files over 1 GB show a progress line on stderr while their
// weights are packed for the kernels (or, when nothing is packed, read in once).
std::shared_ptr<Model> load_with_progress(const std::string& path, bool stream_experts) {
  Timer t;
  const auto file = std::make_shared<const gguf::File>(gguf::File::open(path));
  const MappedFile* map = file->mapping();
  const bool big = map && map->size() > (size_t{1} << 30);
  auto show = [&](const char* what, double done, double total) {
    fmt::print(stderr, "\rmoe: {} {}: {:.0f}% ({:.1f} / {:.1f} GB)", what, path,
               100.0 * done / total, done / 1e9, total / 1e9);
    if (done == total) fmt::print(stderr, "\n");
  };
  LoadOptions opts;
  opts.stream_experts = stream_experts;
  if (auto group = dist::world_expert_group()) {  // mpirun: pack only this rank's experts
    opts.expert_rank = group->rank();
    opts.expert_ranks = group->size();
  }
  if (big) opts.progress = [&](int64_t done, int64_t total) { show("packing", done, total); };
  auto m = load_model(file, opts);
  if (big && m->tensors_packed == 0 && !m->experts_streamed)
    map->prefault([&](size_t done, size_t total) { show("loading", done, total); });
  MOE_LOG_INFO("loaded {} ({}, {} layers, {:.1f} MB, {} tensors packed) in {:.2f} s", path,
               m->cfg.arch, m->cfg.n_layer, m->bytes_total / 1e6, m->tensors_packed, t.seconds());
  return m;
}

namespace {

void log_cache(const Context& ctx) {
  const ExpertCache* cache = ctx.expert_cache();
  if (!cache) return;
  const ExpertCachePlan& p = ctx.cache_plan();
  MOE_LOG_INFO("expert cache: budget {:.1f} MiB = resident weights {:.1f} + KV cache and scratch {:.1f} "
               "+ cache {:.1f} ({} slots per MoE layer, {} I/O)",
               p.budget / 1048576.0, p.resident / 1048576.0, p.context / 1048576.0,
               cache->allocated_bytes() / 1048576.0, cache->slots_per_layer(),
               cache->direct_io() ? "O_DIRECT" : "buffered");
}

void log_cache_stats(const Context& ctx, int64_t tokens) {
  const ExpertCache* cache = ctx.expert_cache();
  if (!cache) return;
  const ExpertCacheStats& s = cache->stats();
  MOE_LOG_INFO("expert cache: hit rate {:.1f}% ({} hits, {} misses), {:.1f} MB read from disk "
               "({:.2f} MB per token) at {:.2f} GB/s",
               100 * s.hit_rate(), s.hits, s.misses, s.bytes_read / 1e6,
               tokens > 0 ? s.bytes_read / 1e6 / tokens : 0.0,
               s.read_seconds > 0 ? s.bytes_read / s.read_seconds / 1e9 : 0.0);
}

// Gives ctx this job's expert group (none outside mpirun) and says so on rank 0.
void join_expert_group(Context& ctx) {
  auto group = dist::world_expert_group();
  const int64_t n_expert = ctx.model().cfg.n_expert;
  if (group && n_expert > 0)
    MOE_LOG_INFO("expert parallelism over {} MPI ranks: rank 0 computes routed experts [0, {}) of {} "
                 "per MoE layer",
                 group->size(), experts_begin(1, n_expert, group->size()), n_expert);
  ctx.set_expert_group(std::move(group));
}

void run(const RunOptions& o) {
  const int64_t mem = mem_bytes(o.mem);
  auto model = load_with_progress(o.model, mem > 0);
  std::vector<int32_t> prompt;
#ifdef MOE_HAVE_TOKENIZER
  std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(*model->file);
#endif
  if (!o.tokens.empty()) {
    prompt = parse_ids(o.tokens);
  } else {
#ifdef MOE_HAVE_TOKENIZER
    prompt = tok->encode(o.prompt, /*add_special=*/true, /*parse_special=*/true);
#else
    throw_error("this build has no tokenizer: pass the prompt as ids with --tokens");
#endif
  }
  MOE_CHECK(!prompt.empty(), "empty prompt");
  Context ctx(model, {.n_ctx = o.ctx, .n_batch = o.batch, .n_threads = o.threads,
                      .kv_f16 = o.kv_type == "f16", .mem_budget = mem});
  log_cache(ctx);
  join_expert_group(ctx);
  Sampler sampler(o.sp);
  std::vector<float> logits;
  std::vector<int32_t> history = prompt;

  Timer t_pp;
  ctx.eval(prompt, logits, false);
  const double pp = t_pp.seconds();
#ifdef MOE_HAVE_TOKENIZER
  StreamDecoder dec(*tok);
  if (!o.ids_only) fmt::print("{}", o.prompt.empty() ? tok->decode(prompt) : o.prompt);
#endif
  Timer t_tg;
  int generated = 0;
  for (int i = 0; i < o.n_predict; ++i) {
    const int32_t id = sampler.sample(logits, history);
    history.push_back(id);
    ++generated;
#ifdef MOE_HAVE_TOKENIZER
    if (o.ids_only) {
      fmt::print("{}{}", i ? " " : "", id);
    } else {
      fmt::print("{}", dec.push(id));
    }
    std::fflush(stdout);
    if (tok->is_eog(id)) break;
#else
    fmt::print("{}{}", i ? " " : "", id);
#endif
    if (i + 1 == o.n_predict) break;
    if (ctx.n_past() + 1 > ctx.n_ctx())
      throw_error("context full after {} tokens (context size {}); raise -c", ctx.n_past(), ctx.n_ctx());
    const int32_t one[1] = {id};
    ctx.eval(one, logits, false);
  }
#ifdef MOE_HAVE_TOKENIZER
  if (!o.ids_only) fmt::print("{}", dec.flush());
#endif
  fmt::print("\n");
  std::fflush(stdout);
  const double tg = t_tg.seconds();
  MOE_LOG_INFO("prompt: {} tokens in {:.3f} s ({:.1f} tok/s); generated: {} tokens in {:.3f} s ({:.1f} tok/s); threads {}",
               prompt.size(), pp, prompt.size() / pp, generated, tg, generated / tg, ctx.pool().size());
  log_cache_stats(ctx, static_cast<int64_t>(prompt.size()) + generated);
}

void logits_cmd(const std::string& model_path, const std::string& tokens, const std::string& out,
                int threads, int64_t batch, const std::string& mem_s) {
  const int64_t mem = mem_bytes(mem_s);
  auto model = load_with_progress(model_path, mem > 0);
  std::vector<int32_t> ids = parse_ids(tokens);
  MOE_CHECK(!ids.empty(), "--tokens is empty");
  Context ctx(model, {.n_ctx = static_cast<int64_t>(ids.size()), .n_batch = batch, .n_threads = threads,
                      .mem_budget = mem});
  log_cache(ctx);
  join_expert_group(ctx);
  std::vector<float> logits;
  ctx.eval(ids, logits, true);
  log_cache_stats(ctx, static_cast<int64_t>(ids.size()));
  if (!dist::is_root()) return;  // rank 0 writes the file
  std::ofstream f(out, std::ios::binary);
  MOE_CHECK(f.good(), "{}: cannot open for writing", out);
  f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
  MOE_CHECK(f.good(), "{}: write failed", out);
}

}  // namespace

void add_sampler_options(CLI::App* cmd, SamplerParams& sp) {
  cmd->add_option("--temp", sp.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", sp.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", sp.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", sp.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", sp.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", sp.repeat_last_n, "Tokens the penalty looks back")->capture_default_str();
  cmd->add_option("--seed", sp.seed, "Sampling seed")->capture_default_str();
}

static void register_run_commands(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* run_cmd = app.add_subcommand("run", "Generate text from a prompt");
  run_cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  auto* p = run_cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* t = run_cmd->add_option("--tokens", o->tokens, "Prompt as space-separated token ids");
  p->excludes(t);
  run_cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  run_cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
  run_cmd->add_option("-c,--ctx-size", o->ctx, "Context size (tokens)")->capture_default_str();
  run_cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass in the prompt")->capture_default_str();
  add_sampler_options(run_cmd, o->sp);
  run_cmd->add_flag("--ids", o->ids_only, "Print generated token ids instead of text");
  run_cmd->add_option("--kv-type", o->kv_type, "KV cache type: f32, or f16 (half the memory)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  add_mem_option(run_cmd, o->mem);
  run_cmd->callback([o] {
    MOE_CHECK(!o->prompt.empty() || !o->tokens.empty(), "run: give a prompt with -p or --tokens");
    run(*o);
  });

  auto lm = std::make_shared<std::string>();
  auto lt = std::make_shared<std::string>();
  auto lo = std::make_shared<std::string>();
  auto lth = std::make_shared<int>(0);
  auto lb = std::make_shared<int64_t>(512);
  auto lmem = std::make_shared<std::string>();
  auto* lg = app.add_subcommand("logits", "Write the logits of every position of a token sequence "
                                          "(raw little-endian float32 [n_tokens, n_vocab])");
  lg->add_option("-m,--model", *lm, "GGUF model file")->required();
  lg->add_option("--tokens", *lt, "Space-separated token ids")->required();
  lg->add_option("--out", *lo, "Output file")->required();
  lg->add_option("-t,--threads", *lth, "Threads (0: all cores)");
  lg->add_option("-b,--batch-size", *lb, "Tokens per forward pass");
  add_mem_option(lg, *lmem);
  lg->callback([=] { logits_cmd(*lm, *lt, *lo, *lth, *lb, *lmem); });
}

MOE_REGISTER_COMMAND(run, register_run_commands);

}  // namespace moe::tools
