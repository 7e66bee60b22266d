// Causal attention of one (sequence, head) in float32 on the sgemm kernel (see
// ops.h for the double templates it replaces in training). Rows go in blocks of
// RB: block [r0, r1) only needs keys [0, r1), so about 5/8 of the full S x S
// products are computed for S = 128; probabilities above the diagonal are 0.
#include <algorithm>
#include <vector>

#include "train/ops.h"

namespace moe::train {
namespace {
constexpr int64_t RB = 32;
}

void attention_fwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       float* P, float* o, int64_t ldo, int64_t S, int64_t D, float scale) {
  for (int64_t r0 = 0; r0 < S; r0 += RB) {
    const int64_t r1 = std::min(S, r0 + RB);
    sgemm(r1 - r0, r1, D, q + r0 * ldq, ldq, 1, k, 1, ldk, P + r0 * S, S, false, nullptr);
    for (int64_t i = r0; i < r1; ++i) {
      float* p = P + i * S;
      for (int64_t j = 0; j <= i; ++j) p[j] *= scale;
      softmax_fwd(p, i + 1);
      std::fill(p + i + 1, p + S, 0.0f);
    }
    sgemm(r1 - r0, D, r1, P + r0 * S, S, 1, v, ldk, 1, o + r0 * ldo, ldo, false, nullptr);
  }
}

void attention_bwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       const float* P, const float* dO, int64_t ldo, float* dq, float* dk, float* dv,
                       int64_t S, int64_t D, float scale) {
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(S * S)) buf.resize(S * S);
  float* dS = buf.data();
  for (int64_t r0 = 0; r0 < S; r0 += RB) {
    const int64_t r1 = std::min(S, r0 + RB);
    // dP = dO V^T (keys [0, r1)), then dS = P (dP - sum_j P dP) scale in place
    sgemm(r1 - r0, r1, D, dO + r0 * ldo, ldo, 1, v, 1, ldk, dS + r0 * S, S, false, nullptr);
    for (int64_t i = r0; i < r1; ++i) {
      const float* p = P + i * S;
      float* d = dS + i * S;
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) sum += double(p[j]) * double(d[j]);
      const float sf = static_cast<float>(sum);
      for (int64_t j = 0; j <= i; ++j) d[j] = p[j] * (d[j] - sf) * scale;
      std::fill(d + i + 1, d + S, 0.0f);
    }
    // dq = dS K
    sgemm(r1 - r0, D, r1, dS + r0 * S, S, 1, k, ldk, 1, dq + r0 * ldq, ldq, false, nullptr);
  }
  // dv += P^T dO, dk += dS^T q: key rows [c0, c1) take query rows [c0, S)
  for (int64_t c0 = 0; c0 < S; c0 += RB) {
    const int64_t c1 = std::min(S, c0 + RB);
    sgemm(c1 - c0, D, S - c0, P + c0 * S + c0, 1, S, dO + c0 * ldo, ldo, 1, dv + c0 * ldk, ldk, true,
          nullptr);
    sgemm(c1 - c0, D, S - c0, dS + c0 * S + c0, 1, S, q + c0 * ldq, ldq, 1, dk + c0 * ldk, ldk, true,
          nullptr);
  }
}

}  // namespace moe::train
