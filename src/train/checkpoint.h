// Checkpoints and export. A checkpoint is "MOETRAIN" + u64 header length + a JSON
// header (shape, routing, step, optimiser step count, RNG state, tokenizer path)
// + the raw f32 arrays: weights, Adam m, Adam v, aux-free selection biases.
// export_gguf() writes a qwen3moe GGUF with the keys and tensor names of
// src/model/synth.cpp and the tokenizer embedded as tokenizer.ggml.*, which
// `moe run` and `moe serve` load directly.
#pragma once
#include <random>
#include <string>

#include "gguf/types.h"
#include "train/model.h"
#include "train/optimizer.h"

namespace moe::train {

struct TrainState {
  int64_t step = 0;               // optimiser steps done
  std::mt19937_64 rng;            // batch sampler
  std::string tokenizer;          // tokenizer.json path used for the data
};

void save_checkpoint(const std::string& path, const TrainModel<float>& m, const AdamW& opt,
                     const TrainState& st);
// Reads the header only (to build the model before loading).
void read_checkpoint_header(const std::string& path, ModelShape& shape, RoutingOptions& ro);
void load_checkpoint(const std::string& path, TrainModel<float>& m, AdamW& opt, TrainState& st);

void export_gguf(const TrainModel<float>& m, const std::string& tokenizer_json,
                 const std::string& path, GgmlType type, const std::string& name);

}  // namespace moe::train
