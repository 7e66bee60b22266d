// The training model: a qwen3moe-style transformer (embedding, RMSNorm, GQA
// attention with NEOX rope and per-head q/k RMSNorm, softmax router + top-k with
// renormalised weights, per-expert SwiGLU over the tokens routed to it, optional
// shared expert, final norm, untied lm_head, cross-entropy) with saved
// activations and a hand-written backward. Parameters live in one flat buffer
// (params.h) so the optimiser, clipping and checkpoints treat them as one vector.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "train/params.h"

namespace moe::train {

enum class Balance { aux, aux_free, none };

struct RoutingOptions {
  Balance balance = Balance::aux;
  float aux_alpha = 0.01f;        // Switch aux loss coefficient
  float z_coef = 1e-3f;           // router z-loss coefficient
  float bias_gamma = 1e-3f;       // aux-free bias step
  float capacity_factor = 0.0f;   // 0: dropless
};

struct LossStats {
  double ce = 0;        // mean cross-entropy over counted targets
  double aux = 0;       // sum over layers of the aux loss
  double z = 0;         // sum over layers of the z-loss
  int64_t n_targets = 0;
  int64_t n_dropped = 0;  // (token, expert) pairs dropped by the capacity limit
  double total() const { return ce + aux + z; }
};

template <typename T>
class TrainModel {
 public:
  TrainModel(const ModelShape& shape, const RoutingOptions& ro, ThreadPool* pool);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  const ModelShape& shape() const { return layout_.shape; }
  const ParamLayout& layout() const { return layout_; }
  std::vector<T> w;                  // parameters
  std::vector<T> g;                  // gradients (accumulated by backward)
  std::vector<float> sel_bias;       // [n_layer][n_expert] aux-free selection bias
  std::vector<int64_t> load;         // [n_layer][n_expert] tokens routed since reset_load()
  RoutingOptions routing;

  // Forward over B sequences of S tokens (tokens/targets [B*S]; target < 0 is not
  // counted). Saves activations for backward(). logits_out (optional) receives [B*S, V].
  LossStats forward(const int32_t* tokens, const int32_t* targets, int64_t B, int64_t S,
                    std::vector<T>* logits_out = nullptr);
  // Accumulates scale * d(total loss)/d(params) into g.
  void backward(T scale);
  void zero_grad();
  void reset_load();
  // Aux-free balancing: moves each layer's bias by +-gamma toward the mean load of `load`.
  void update_bias();

 private:
  struct Layer;
  void attention_fwd(Layer& a, int il);
  void attention_bwd(Layer& a, int il, T* dx);
  void moe_fwd(Layer& a, int il, LossStats& st);
  void moe_bwd(Layer& a, int il, const T* dout, T* dxn);

  ParamLayout layout_;
  ThreadPool* pool_;
  int64_t B_ = 0, S_ = 0, N_ = 0;
  std::vector<int32_t> tokens_, targets_;
  std::vector<float> rope_;  // [S, head_dim] (cos, sin) pairs
  std::vector<Layer> acts_;
  std::vector<T> xf_, xnf_, rf_, probs_;  // final norm input/output, rms factors, softmax [N, V]
  int64_t n_targets_ = 0;
  T scale_ = 1;  // loss scale of the running backward
};

extern template class TrainModel<float>;
extern template class TrainModel<double>;

}  // namespace moe::train
