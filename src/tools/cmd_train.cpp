// `moe train` (train a qwen3moe-style MoE language model on text files on the
// CPU, with balanced routing, checkpoints and a GGUF export that `moe run`
// loads) and `moe tokenizer-train` (a byte-level BPE tokenizer.json from text).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tools/commands.h"
#include "train/data.h"
#include "train/plot.h"
#include "train/trainer.h"

namespace moe::tools {
namespace {

void register_train_commands(CLI::App& app) {
  auto o = std::make_shared<train::TrainOptions>();
  auto balance = std::make_shared<std::string>("aux");
  auto* t = app.add_subcommand("train", "Train a small MoE language model on text files (CPU)");
  t->footer(
      "Example:\n"
      "  moe tokenizer-train --data kjv.txt --vocab 4096 -o tok/tokenizer.json\n"
      "  moe train --data kjv.txt --tokenizer tok/tokenizer.json --steps 2000 --export kjv.gguf\n"
      "  moe run -m kjv.gguf -p \"In the beginning\"\n"
      "Writes OUT/metrics.jsonl, OUT/loss.svg, OUT/expert_load.svg, OUT/checkpoint.bin.");
  t->add_option("--data", o->data, "Text files to train on")->required()->check(CLI::ExistingFile);
  t->add_option("--tokenizer", o->tokenizer, "tokenizer.json (see `moe tokenizer-train`)");
  t->add_option("--layers", o->shape.n_layer, "Transformer layers")->capture_default_str();
  t->add_option("--embd", o->shape.n_embd, "Embedding width")->capture_default_str();
  t->add_option("--heads", o->shape.n_head, "Attention heads")->capture_default_str();
  t->add_option("--kv-heads", o->shape.n_head_kv, "Key/value heads")->capture_default_str();
  t->add_option("--head-dim", o->shape.head_dim, "Head dimension")->capture_default_str();
  t->add_option("--experts", o->shape.n_expert, "Routed experts")->capture_default_str();
  t->add_option("--top-k", o->shape.n_expert_used, "Experts per token")->capture_default_str();
  t->add_option("--ff", o->shape.n_ff_exp, "Expert FFN width")->capture_default_str();
  t->add_option("--shared-ff", o->shape.n_ff_shexp, "Shared expert width (0: none)")->capture_default_str();
  t->add_option("--ctx", o->shape.n_ctx, "Sequence length")->capture_default_str();
  t->add_option("--balance", *balance, "Load balancing: aux (Switch loss), aux-free (bias), none")
      ->check(CLI::IsMember({"aux", "aux-free", "none"}))->capture_default_str();
  t->add_option("--aux-alpha", o->routing.aux_alpha, "Aux loss coefficient")->capture_default_str();
  t->add_option("--z-loss", o->routing.z_coef, "Router z-loss coefficient")->capture_default_str();
  t->add_option("--bias-gamma", o->routing.bias_gamma, "Aux-free bias step")->capture_default_str();
  t->add_option("--capacity", o->routing.capacity_factor, "Capacity factor (0: dropless)")->capture_default_str();
  t->add_option("--steps", o->optim.total_steps, "Optimiser steps")->capture_default_str();
  t->add_option("--batch", o->batch, "Sequences per micro-batch")->capture_default_str();
  t->add_option("--accum", o->accum, "Micro-batches per step (gradient accumulation)")->capture_default_str();
  t->add_option("--lr", o->optim.lr, "Peak learning rate")->capture_default_str();
  t->add_option("--min-lr-ratio", o->optim.min_lr_ratio, "Final lr / peak lr")->capture_default_str();
  t->add_option("--warmup", o->optim.warmup, "Warm-up steps")->capture_default_str();
  t->add_option("--weight-decay", o->optim.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  t->add_option("--clip", o->optim.clip, "Gradient norm clip (0: none)")->capture_default_str();
  t->add_option("--val-frac", o->val_frac, "Held-out validation fraction")->capture_default_str();
  t->add_option("--eval-every", o->eval_every, "Validation every N steps")->capture_default_str();
  t->add_option("--eval-batches", o->eval_batches, "Validation batches")->capture_default_str();
  t->add_option("--save-every", o->save_every, "Checkpoint every N steps")->capture_default_str();
  t->add_option("-t,--threads", o->threads, "Threads (0: all)")->capture_default_str();
  t->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  t->add_option("-o,--out", o->out_dir, "Output folder")->capture_default_str();
  t->add_option("--resume", o->resume, "Continue from a checkpoint")->check(CLI::ExistingFile);
  t->add_option("--export", o->export_path, "GGUF to write at the end (default OUT/model.gguf)");
  t->add_option("--export-type", o->export_type, "Matrix type of the export: f32 | f16")
      ->check(CLI::IsMember({"f32", "f16"}))->capture_default_str();
  t->add_option("--time-limit", o->time_limit_s, "Stop after this many seconds (then export)");
  t->add_flag("!--no-progress", o->progress, "No progress line");
  t->callback([o, balance] {
    o->routing.balance = *balance == "aux" ? train::Balance::aux
                         : *balance == "aux-free" ? train::Balance::aux_free
                                                  : train::Balance::none;
    MOE_CHECK(o->shape.n_head_kv > 0 && o->shape.n_head % o->shape.n_head_kv == 0,
              "--heads {} must be a multiple of --kv-heads {}", o->shape.n_head, o->shape.n_head_kv);
    train::run_training(*o);
  });

  auto paths = std::make_shared<std::vector<std::string>>();
  auto vocab = std::make_shared<int64_t>(4096);
  auto out = std::make_shared<std::string>("tokenizer.json");
  auto* b = app.add_subcommand("tokenizer-train", "Train a byte-level BPE tokenizer.json on text files");
  b->add_option("--data", *paths, "Text files")->required()->check(CLI::ExistingFile);
  b->add_option("--vocab", *vocab, "Vocabulary size (bytes + merges + <|endoftext|>)")->capture_default_str();
  b->add_option("-o,--out", *out, "Output tokenizer.json (tokenizer_config.json is written beside it)")
      ->capture_default_str();
  b->callback([paths, vocab, out] {
    const auto st = train::train_bpe(*paths, *vocab, *out);
    fmt::print(stderr, "moe tokenizer-train: {} distinct words, {} merges; wrote {}\n", st.n_words,
               st.n_merges, *out);
  });

  // train-report: compare runs (the scaling experiment)
  auto runs = std::make_shared<std::vector<std::string>>();
  auto rout = std::make_shared<std::string>("docs/scaling");
  auto* r = app.add_subcommand("train-report", "Plot and tabulate several `moe train` runs (scaling)");
  r->add_option("--run", *runs, "LABEL=OUT_DIR of a finished run (repeat)")->required();
  r->add_option("-o,--out", *rout, "Folder for val_loss.svg and throughput.svg")->capture_default_str();
  r->callback([runs, rout] {
    std::vector<train::Series> loss, tput(1);
    tput[0].label = "train tokens/s";
    fmt::print("| run | experts | top-k | total params | active params | tokens | val loss | tokens/s | max/mean load per layer |\n"
               "|---|---|---|---|---|---|---|---|---|\n");
    for (const std::string& spec : *runs) {
      const auto eq = spec.find('=');
      MOE_CHECK(eq != std::string::npos, "--run '{}': expected LABEL=DIR", spec);
      const std::string label = spec.substr(0, eq), dir = spec.substr(eq + 1);
      std::ifstream sin(dir + "/summary.json");
      MOE_CHECK(sin.good(), "{}/summary.json: missing (did the run finish?)", dir);
      const auto sj = nlohmann::json::parse(sin);
      train::Series se{label, {}, {}};
      std::ifstream log(dir + "/metrics.jsonl");
      for (std::string line; std::getline(log, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("val_loss")) {
          se.x.push_back(j["tokens"].get<double>());
          se.y.push_back(j["val_loss"].get<double>());
        }
      }
      loss.push_back(se);
      tput[0].x.push_back(sj["n_params"].get<double>());
      tput[0].y.push_back(sj["tokens_per_s"].get<double>());
      std::string lm;
      for (const auto& v : sj["load_max_over_mean"]) lm += fmt::format("{}{:.2f}", lm.empty() ? "" : " ", v.get<double>());
      fmt::print("| {} | {} | {} | {:.2f} M | {:.2f} M | {} | {:.4f} | {:.0f} | {} |\n", label,
                 sj["n_expert"].get<int64_t>(), sj["top_k"].get<int64_t>(),
                 sj["n_params"].get<double>() / 1e6, sj["n_active"].get<double>() / 1e6,
                 sj["tokens"].get<int64_t>(), sj["val_loss"].get<double>(),
                 sj["tokens_per_s"].get<double>(), lm);
    }
    std::filesystem::create_directories(*rout);
    train::write_line_chart(*rout + "/val_loss.svg", "Validation loss at constant active parameters",
                            "training tokens", "validation cross-entropy (nats)", loss);
    train::write_line_chart(*rout + "/throughput.svg", "Training throughput vs total parameters",
                            "total parameters (log)", "tokens/s", tput, true);
  });
}

}  // namespace

MOE_REGISTER_COMMAND(train, register_train_commands);

}  // namespace moe::tools
