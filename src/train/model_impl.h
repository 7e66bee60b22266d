// Private to model.cpp / model_backward.cpp: the saved activations of one layer.
#pragma once
#include <vector>

#include "train/model.h"

namespace moe::train {

template <typename T>
struct TrainModel<T>::Layer {
  std::vector<T> x, r1, xn1;         // block input [N,E], rms factors [N], normed [N,E]
  std::vector<T> qp, kp, v;          // projections before q/k norm [N,H*D], [N,Hk*D] x2
  std::vector<T> rq, rk;             // q/k norm rms factors [N,H], [N,Hk]
  std::vector<T> q, k;               // normed and rotated
  std::vector<T> P;                  // attention probabilities [B,H,S,S]
  std::vector<T> att;                // attention output before wo [N,H*D]
  std::vector<T> xm, r2, xn2;        // after attention residual; ffn norm
  std::vector<T> probs, lse;         // router softmax [N,X], logsumexp [N]
  std::vector<int32_t> sel;          // [N,K]
  std::vector<T> wsel, wsum;         // renormalised weights [N,K]; clamped sums [N]
  std::vector<int32_t> slot_of;      // [N*K] slot, -1 when dropped
  std::vector<int32_t> slot_tok;     // [slots]
  std::vector<int64_t> off, counts;  // [X+1] slot offsets; [X] selections (before drops)
  std::vector<T> xs, G, U, A, O;     // per slot [slots, E|F|F|F|E]
  std::vector<T> Gs, Us, As;         // shared expert [N, Sh]
};

}  // namespace moe::train
