// Helpers shared by model tests: temp files, synthesized models, error metrics.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "compare.h"  // max_row_rel_err, rel_l2, nan_max (tests/common)
#include "model/synth.h"

namespace moe::test {

// A fresh temp directory for this test binary (removed at exit).
std::string temp_dir();
// Synthesizes a model into temp_dir() and returns its path.
std::string synth(const SynthOptions& o, const std::string& name);
std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint64_t seed);

}  // namespace moe::test
