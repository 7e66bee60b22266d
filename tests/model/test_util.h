// Helpers shared by model tests: temp files, synthesized models, error metrics.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/synth.h"

namespace moe::test {

// A fresh temp directory for this test binary (removed at exit).
std::string temp_dir();
// Synthesizes a model into temp_dir() and returns its path.
std::string synth(const SynthOptions& o, const std::string& name);
// Per row: max_j |a - ref| / max_j |ref|; returns the largest over rows.
double max_row_rel_err(std::span<const float> a, std::span<const float> ref, int64_t n_cols);
// ‖a − ref‖ / ‖ref‖ over everything.
double rel_l2(std::span<const float> a, std::span<const float> ref);
std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint64_t seed);

}  // namespace moe::test
