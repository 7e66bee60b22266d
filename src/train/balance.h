// Load-balancing terms of the router, shared by the model and the tests:
//   Switch aux loss   L = alpha * N_exp * sum_i f_i * P_i, f_i = selections of i / (T * k)
//                     (counted before any capacity drop), P_i = mean_t p_ti;
//                     dL/dp_ti = alpha * N_exp * f_i / T (f is a count, no gradient).
//   router z-loss     L = coef * mean_t logsumexp(logits_t)^2;  dL/dlogit_ti = 2 coef lse_t p_ti / T.
//   aux-free bias     b_i += gamma * sign(mean load - load_i) after each step (DeepSeek-V3).
#pragma once
#include <cstdint>

namespace moe::train {

template <typename T>
T aux_loss(const T* probs, const int64_t* counts, int64_t n_tokens, int64_t n_expert, int64_t top_k,
           T alpha) {
  T loss = 0;
  for (int64_t i = 0; i < n_expert; ++i) {
    double P = 0;
    for (int64_t t = 0; t < n_tokens; ++t) P += probs[t * n_expert + i];
    const double f = double(counts[i]) / double(n_tokens * top_k);
    loss += static_cast<T>(f * P / double(n_tokens));
  }
  return alpha * T(n_expert) * loss;
}
// dL/dp_ti (the same for every token t)
template <typename T>
T aux_grad(const int64_t* counts, int64_t i, int64_t n_tokens, int64_t n_expert, int64_t top_k, T alpha) {
  return alpha * T(n_expert) * T(double(counts[i]) / double(n_tokens * top_k)) / T(n_tokens);
}

template <typename T>
T z_loss(const T* lse, int64_t n_tokens, T coef) {
  double s = 0;
  for (int64_t t = 0; t < n_tokens; ++t) s += double(lse[t]) * double(lse[t]);
  return coef * static_cast<T>(s / double(n_tokens));
}

// Moves bias toward balance: underloaded experts up, overloaded down, by gamma.
inline void bias_update(const int64_t* load, float* bias, int64_t n_expert, float gamma) {
  double mean = 0;
  for (int64_t i = 0; i < n_expert; ++i) mean += double(load[i]);
  mean /= double(n_expert);
  for (int64_t i = 0; i < n_expert; ++i) {
    if (double(load[i]) < mean) bias[i] += gamma;
    else if (double(load[i]) > mean) bias[i] -= gamma;
  }
}

}  // namespace moe::train
