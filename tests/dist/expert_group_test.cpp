// The expert-parallel hook of model/ (model/expert_group.h, Context::set_expert_group)
// without MPI: N contexts on the same model run in N threads, each owning a share of the
// routed experts, joined by an in-process ExpertGroup whose sum() meets at a barrier and
// adds the members' buffers in rank order. Each expert output row comes from exactly one
// member (zeros elsewhere), so the logits must equal one context's bit for bit; and one
// member alone (its sum sees no peers) must NOT: each member computes only its share.
#include <gtest/gtest.h>

#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#include "../model/test_util.h"
#include "base/error.h"
#include "model/context.h"
#include "model/model.h"

namespace moe {
namespace {

struct Meeting {
  explicit Meeting(int n) : n(n), bar(n), parts(n) {}
  int n;
  std::barrier<> bar;
  std::vector<float*> parts;
  std::vector<float> total;
};

class ThreadGroup final : public ExpertGroup {
 public:
  ThreadGroup(std::shared_ptr<Meeting> m, int rank) : m_(std::move(m)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return m_->n; }
  void sum(float* data, int64_t n) override {
    m_->parts[rank_] = data;
    m_->bar.arrive_and_wait();
    if (rank_ == 0) {
      m_->total.assign(data, data + n);
      for (int r = 1; r < m_->n; ++r)
        for (int64_t i = 0; i < n; ++i) m_->total[i] += m_->parts[r][i];
    }
    m_->bar.arrive_and_wait();
    std::copy(m_->total.begin(), m_->total.end(), data);
    m_->bar.arrive_and_wait();  // nobody reuses `total` before everyone has copied it
  }

 private:
  std::shared_ptr<Meeting> m_;
  int rank_;
};

// A group of `size` members of which only this one exists: sum() leaves its partial.
class AloneGroup final : public ExpertGroup {
 public:
  explicit AloneGroup(int size) : size_(size) {}
  int rank() const override { return 0; }
  int size() const override { return size_; }
  void sum(float*, int64_t) override {}

 private:
  int size_;
};

std::vector<float> logits_of(std::shared_ptr<const Model> m, const std::vector<int32_t>& tokens,
                             std::shared_ptr<ExpertGroup> g) {
  Context ctx(m, {.n_ctx = 64, .n_batch = 8, .n_threads = 1});  // n_batch 8: several batches
  ctx.set_expert_group(std::move(g));
  std::vector<float> out;
  ctx.eval(tokens, out, true);
  return out;
}

void check_split(const SynthOptions& o, const std::string& name) {
  auto model = load_model(test::synth(o, name));
  const std::vector<int32_t> tokens = test::random_tokens(20, o.n_vocab, 7);
  const std::vector<float> one = logits_of(model, tokens, nullptr);
  for (int n : {2, 3}) {
    auto meeting = std::make_shared<Meeting>(n);
    std::vector<std::vector<float>> got(n);
    std::vector<std::jthread> members;
    for (int r = 0; r < n; ++r)
      members.emplace_back([&, r] { got[r] = logits_of(model, tokens, std::make_shared<ThreadGroup>(meeting, r)); });
    members.clear();  // join
    for (int r = 0; r < n; ++r) {
      const double err = test::max_row_rel_err(got[r], one, o.n_vocab);
      EXPECT_EQ(err, 0.0) << name << " N=" << n << " rank " << r;
      EXPECT_EQ(got[r], got[0]) << name << ": members must agree bit for bit";
      std::printf("[expert_group] %-10s N=%d rank %d max_row_rel_err %.3e\n", name.c_str(), n, r, err);
    }
    const std::vector<float> alone = logits_of(model, tokens, std::make_shared<AloneGroup>(n));
    EXPECT_GT(test::max_row_rel_err(alone, one, o.n_vocab), 1e-3)
        << name << ": a member alone computed every expert";
  }
}

SynthOptions small(const char* arch, GgmlType type) {
  SynthOptions o;
  o.arch = arch;
  o.n_embd = 64;
  o.head_dim = 16;
  o.n_vocab = 300;
  o.n_expert = 8;
  o.n_expert_used = 2;
  o.n_ff_exp = 32;
  o.type = type;
  o.std = 0;  // N(0, 1/fan_in): routing margins well above rounding
  return o;
}

TEST(ExpertGroup, Qwen3MoeF32) { check_split(small("qwen3moe", GgmlType::F32), "qwen3moe_f32"); }
TEST(ExpertGroup, Qwen2MoeSharedExpertQ8) { check_split(small("qwen2moe", GgmlType::Q8_0), "qwen2moe_q8"); }

// A model whose load packed only one rank's experts refuses to run outside that rank.
TEST(ExpertGroup, ShareLoadedModelNeedsItsGroup) {
  const std::string path = test::synth(small("qwen3moe", GgmlType::Q8_0), "share_q8");
  LoadOptions lo;
  lo.expert_rank = 1;
  lo.expert_ranks = 2;
  auto model = load_model(path, lo);
  if (model->tensors_packed == 0) GTEST_SKIP() << "no packed kernels on this CPU: nothing is split at load";
  const std::vector<int32_t> tokens = test::random_tokens(4, 300, 3);
  EXPECT_THROW(logits_of(model, tokens, nullptr), Error);
  EXPECT_THROW(logits_of(model, tokens, std::make_shared<AloneGroup>(2)), Error);  // rank 0, not 1
  lo.expert_ranks = 0;
  EXPECT_THROW(load_model(path, lo), Error);
}

}  // namespace
}  // namespace moe
