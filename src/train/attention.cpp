// Causal attention of one (sequence, head) in float32 on the sgemm kernel (see
// ops.h for the double templates it replaces in training). K, V (and in backward
// Q, dO) are packed once per head; rows go in blocks of RB, and block [r0, r1)
// only needs keys [0, r1), so about 5/8 of the full S x S products are computed
// for S = 128. Probabilities above the diagonal are stored as 0.
#include <algorithm>
#include <vector>

#include "train/ops.h"

namespace moe::train {
namespace {
constexpr int64_t RB = 32;

float* scratch(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(n);
  return v.data();
}
}  // namespace

void attention_fwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       float* P, float* o, int64_t ldo, int64_t S, int64_t D, float scale) {
  thread_local std::vector<float> kb, vb;
  const int64_t NR = sgemm_panel_width();
  float* kp = scratch(kb, sgemm_packed_b_size(D, S));  // op(B) = K^T: [D, S]
  float* vp = scratch(vb, sgemm_packed_b_size(S, D));  // op(B) = V: [S, D]
  sgemm_pack_b(D, S, k, 1, ldk, kp, nullptr);
  sgemm_pack_b(S, D, v, ldk, 1, vp, nullptr);
  for (int64_t r0 = 0; r0 < S; r0 += RB) {
    const int64_t r1 = std::min(S, r0 + RB);
    sgemm_prepacked(r1 - r0, r1, D, q + r0 * ldq, ldq, 1, kp, D * NR, P + r0 * S, S, false, nullptr);
    for (int64_t i = r0; i < r1; ++i) {
      float* p = P + i * S;
      for (int64_t j = 0; j <= i; ++j) p[j] *= scale;
      softmax_fwd(p, i + 1);
      std::fill(p + i + 1, p + S, 0.0f);
    }
    sgemm_prepacked(r1 - r0, D, r1, P + r0 * S, S, 1, vp, S * NR, o + r0 * ldo, ldo, false, nullptr);
  }
}

void attention_bwd_f32(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk,
                       const float* P, const float* dO, int64_t ldo, float* dq, float* dk, float* dv,
                       int64_t S, int64_t D, float scale) {
  thread_local std::vector<float> buf, vb, kb, ob, qb;
  const int64_t NR = sgemm_panel_width();
  float* dS = scratch(buf, S * S);
  float* vtp = scratch(vb, sgemm_packed_b_size(D, S));  // V^T: [D, S]
  float* kp = scratch(kb, sgemm_packed_b_size(S, D));   // K: [S, D]
  float* op = scratch(ob, sgemm_packed_b_size(S, D));   // dO: [S, D]
  float* qp = scratch(qb, sgemm_packed_b_size(S, D));   // Q: [S, D]
  sgemm_pack_b(D, S, v, 1, ldk, vtp, nullptr);
  sgemm_pack_b(S, D, k, ldk, 1, kp, nullptr);
  sgemm_pack_b(S, D, dO, ldo, 1, op, nullptr);
  sgemm_pack_b(S, D, q, ldq, 1, qp, nullptr);
  for (int64_t r0 = 0; r0 < S; r0 += RB) {
    const int64_t r1 = std::min(S, r0 + RB);
    // dP = dO V^T (keys [0, r1)), then dS = P (dP - sum_j P dP) scale in place
    sgemm_prepacked(r1 - r0, r1, D, dO + r0 * ldo, ldo, 1, vtp, D * NR, dS + r0 * S, S, false, nullptr);
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
    sgemm_prepacked(r1 - r0, D, r1, dS + r0 * S, S, 1, kp, S * NR, dq + r0 * ldq, ldq, false, nullptr);
  }
  // dv += P^T dO, dk += dS^T q: key rows [c0, c1) take query rows [c0, S)
  for (int64_t c0 = 0; c0 < S; c0 += RB) {
    const int64_t c1 = std::min(S, c0 + RB);
    sgemm_prepacked(c1 - c0, D, S - c0, P + c0 * S + c0, 1, S, op + c0 * NR, S * NR, dv + c0 * ldk, ldk,
                    true, nullptr);
    sgemm_prepacked(c1 - c0, D, S - c0, dS + c0 * S + c0, 1, S, qp + c0 * NR, S * NR, dk + c0 * ldk, ldk,
                    true, nullptr);
  }
}

}  // namespace moe::train
