// Sampler: the filters follow their usual definitions (top-p: smallest prefix of
// the sorted distribution with mass >= p; min-p: keep p_i >= min_p * p_max).
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "base/error.h"

namespace moe {

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  MOE_CHECK(p.top_p > 0.0f, "top-p must be in (0, 1] (got {})", p.top_p);
  MOE_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "min-p must be in [0, 1] (got {})", p.min_p);
  MOE_CHECK(p.repeat_penalty > 0.0f, "repeat penalty must be positive (got {})", p.repeat_penalty);
  MOE_CHECK(std::isfinite(p.temperature), "temperature must be finite");
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const int64_t n = static_cast<int64_t>(logits.size());
  MOE_CHECK(n > 0, "sampler: empty logits");
  cand_.resize(n);
  for (int64_t i = 0; i < n; ++i) cand_[i] = {static_cast<int32_t>(i), logits[i]};

  if (p_.repeat_penalty != 1.0f && !history.empty()) {
    const size_t from = history.size() > static_cast<size_t>(std::max(0, p_.repeat_last_n))
                            ? history.size() - std::max(0, p_.repeat_last_n)
                            : 0;
    std::unordered_set<int32_t> seen(history.begin() + from, history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n) continue;
      float& l = cand_[id].second;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  if (p_.temperature <= 0.0f) {
    auto best = std::min_element(cand_.begin(), cand_.end(), by_logit);
    const auto pick = *best;
    cand_.assign(1, {pick.first, 1.0f});
    return pick.first;
  }
  int64_t keep = n;
  if (p_.top_k > 0 && p_.top_k < n) keep = p_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
  cand_.resize(keep);
  // softmax with temperature
  const float mx = cand_[0].second;
  double sum = 0;
  for (auto& c : cand_) sum += (c.second = std::exp((c.second - mx) / p_.temperature));
  for (auto& c : cand_) c.second = static_cast<float>(c.second / sum);
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t k = 0;
    while (k < cand_.size()) {
      cum += cand_[k++].second;
      if (cum >= p_.top_p) break;
    }
    cand_.resize(k);
  }
  if (p_.min_p > 0.0f) {
    const float thr = p_.min_p * cand_[0].second;
    size_t k = 1;
    while (k < cand_.size() && cand_[k].second >= thr) ++k;
    cand_.resize(k);
  }
  double total = 0;
  for (const auto& c : cand_) total += c.second;
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_), acc = 0;
  for (auto& c : cand_) c.second = static_cast<float>(c.second / total);
  for (const auto& c : cand_) {
    acc += c.second;
    if (r * 1.0 / total <= acc) return c.first;
  }
  return cand_.back().first;
}

}  // namespace moe
