// The training loop behind `moe train`: data, model, AdamW steps with gradient
// accumulation, aux-free bias updates, periodic validation, checkpoints, a
// progress line on stderr, a JSONL metrics log, SVG plots and the GGUF export.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/model.h"
#include "train/optimizer.h"

namespace moe::train {

struct TrainOptions {
  std::vector<std::string> data;  // text files
  std::string tokenizer;          // tokenizer.json
  ModelShape shape;               // n_vocab is taken from the tokenizer
  RoutingOptions routing;
  OptimOptions optim;
  int64_t batch = 16;             // sequences per micro-batch
  int64_t accum = 1;              // micro-batches per step
  double val_frac = 0.05;
  int64_t eval_every = 100;       // steps; 0: only at the end
  int64_t eval_batches = 8;
  int64_t save_every = 500;       // steps; 0: only at the end
  int threads = 0;
  uint64_t seed = 1;
  std::string out_dir = "train-out";  // checkpoint.bin, metrics.jsonl, *.svg
  std::string resume;             // checkpoint to continue from
  std::string export_path;        // GGUF written at the end ("" : out_dir/model.gguf)
  std::string export_type = "f32";  // f32 | f16
  int64_t stop_after = 0;         // stop (with a checkpoint) after this many steps of this run
  double time_limit_s = 0;        // stop early (and export) after this many seconds; 0: none
  bool progress = true;
};

struct TrainResult {
  int64_t steps = 0;
  double final_train_loss = 0, final_val_loss = 0, tokens_per_s = 0;
  int64_t n_params = 0, n_active = 0;
  std::vector<double> load_max_over_mean;  // per layer, over the whole run
};

TrainResult run_training(const TrainOptions& o);

}  // namespace moe::train
