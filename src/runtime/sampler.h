// Token sampler: repetition penalty, then temperature, top-k, top-p, min-p, and a
// draw from the remaining distribution with a seeded RNG (reproducible runs).
// temperature <= 0 is greedy (argmax, lowest id on ties).
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace moe {

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;      // <= 0: off
  float top_p = 0.95f;     // >= 1: off
  float min_p = 0.05f;     // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off; divides positive / multiplies negative logits
  int32_t repeat_last_n = 64;   // tokens considered for the penalty
  uint64_t seed = 0xC0FFEE;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // Picks the next token from logits [n_vocab]; `history` is the sequence so far.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The candidate distribution of the last sample (id, probability), most likely first.
  const std::vector<std::pair<int32_t, float>>& last_candidates() const { return cand_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<int32_t, float>> cand_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace moe
