// End-to-end training checks on tiny models: loss falls on a repetitive corpus;
// a run stopped at step 2 and resumed from its checkpoint ends bit-identical to
// an uninterrupted run (weights, Adam state, RNG); and the GGUF export, loaded
// by moe::load_model and run by moe::Context (the inference engine, an
// independent implementation), gives the training model's logits (tolerance
// 1e-3 absolute on logits of magnitude ~1, float32 with different sum orders).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/context.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/trainer.h"
#include "compare.h"  // tests/common: NaN-aware metrics

using namespace moe::train;
namespace fs = std::filesystem;

namespace {

fs::path tmp_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / (std::string("moe_train_test_") + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string corpus() {
  std::string s;
  const char* lines[] = {"In the beginning God created the heaven and the earth.\n",
                         "And the earth was without form, and void.\n",
                         "And God said, Let there be light: and there was light.\n"};
  for (int i = 0; i < 60; ++i) s += lines[i % 3];
  return s;
}

TrainOptions tiny_options(const fs::path& d) {
  {
    std::ofstream(d / "data.txt") << corpus();
  }
  train_bpe({(d / "data.txt").string()}, 300, (d / "tok" / "tokenizer.json").string());
  TrainOptions o;
  o.data = {(d / "data.txt").string()};
  o.tokenizer = (d / "tok" / "tokenizer.json").string();
  o.shape.n_embd = 32, o.shape.n_layer = 2, o.shape.n_head = 4, o.shape.n_head_kv = 2;
  o.shape.head_dim = 8, o.shape.n_expert = 4, o.shape.n_expert_used = 2, o.shape.n_ff_exp = 16;
  o.shape.n_ctx = 32;
  o.batch = 4;
  o.accum = 2;
  o.optim.total_steps = 4;
  o.optim.warmup = 1;
  o.val_frac = 0.1;
  o.eval_every = 0;
  o.eval_batches = 1;
  o.threads = 2;
  o.progress = false;
  o.out_dir = (d / "out").string();
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(TrainRun, LossDecreasesOnRepetitiveText) {
  auto d = tmp_dir("loss");
  TrainOptions o = tiny_options(d);
  o.optim.total_steps = 40;
  o.optim.lr = 1e-2f;
  o.eval_every = 40;
  const auto r = run_training(o);
  // first step's loss is ~ln(300) = 5.7
  std::ifstream log(o.out_dir + "/metrics.jsonl");
  std::string first;
  std::getline(log, first);
  const double l0 = std::stod(first.substr(first.find("\"loss\":") + 7));
  EXPECT_GT(l0, 4.5);
  EXPECT_LT(r.final_train_loss, l0 - 2.0);
  EXPECT_LT(r.final_val_loss, l0 - 2.0);
  EXPECT_TRUE(fs::exists(o.out_dir + "/loss.svg"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/expert_load.svg"));
}

TEST(TrainRun, ResumeIsBitIdentical) {
  for (Balance bal : {Balance::aux, Balance::aux_free}) {
    auto d = tmp_dir("resume");
    TrainOptions a = tiny_options(d);
    a.routing.balance = bal;
    a.out_dir = (d / "a").string();
    run_training(a);
    TrainOptions b = a;
    b.out_dir = (d / "b").string();
    b.stop_after = 2;
    run_training(b);
    TrainOptions c = a;
    c.out_dir = b.out_dir;
    c.resume = b.out_dir + "/checkpoint.bin";
    c.stop_after = 0;
    run_training(c);
    const std::string ca = slurp(a.out_dir + "/checkpoint.bin"), cc = slurp(c.out_dir + "/checkpoint.bin");
    ASSERT_GT(ca.size(), 1000u);
    EXPECT_TRUE(ca == cc) << "resumed checkpoint differs";
    EXPECT_TRUE(slurp(a.out_dir + "/model.gguf") == slurp(c.out_dir + "/model.gguf"));
  }
}

TEST(TrainRun, ExportMatchesTrainingForward) {
  for (Balance bal : {Balance::aux, Balance::aux_free}) {
    auto d = tmp_dir("export");
    TrainOptions o = tiny_options(d);
    o.routing.balance = bal;
    o.shape.n_ff_shexp = bal == Balance::aux ? 24 : 0;
    o.optim.total_steps = 3;
    run_training(o);
    // the training model from the checkpoint
    ModelShape s;
    RoutingOptions ro;
    read_checkpoint_header(o.out_dir + "/checkpoint.bin", s, ro);
    TrainModel<float> m(s, ro, nullptr);
    AdamW opt(m.w.size());
    TrainState st;
    load_checkpoint(o.out_dir + "/checkpoint.bin", m, opt, st);
    if (bal == Balance::aux_free) {
      double bsum = 0;
      for (float x : m.sel_bias) bsum += std::abs(x);
      EXPECT_GT(bsum, 0.0);
    }
    std::vector<int32_t> tok(20);
    for (size_t i = 0; i < tok.size(); ++i) tok[i] = static_cast<int32_t>((i * 37 + 5) % s.n_vocab);
    std::vector<int32_t> tgt(tok.size(), 0);
    std::vector<float> ref;
    m.forward(tok.data(), tgt.data(), 1, static_cast<int64_t>(tok.size()), &ref);

    auto model = moe::load_model(o.out_dir + "/model.gguf");
    EXPECT_EQ(model->cfg.arch, "qwen3moe");
    EXPECT_EQ(model->cfg.n_expert, s.n_expert);
    moe::Context ctx(model, {.n_ctx = 64, .n_seq = 1, .n_batch = 64, .n_threads = 2});
    std::vector<float> logits;
    ctx.eval(tok, logits, true);
    ASSERT_EQ(logits.size(), ref.size());
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_diff = moe::test::nan_max(max_diff, double(std::abs(logits[i] - ref[i])));
      max_abs = moe::test::nan_max(max_abs, double(std::abs(ref[i])));
    }
    EXPECT_GT(max_abs, 0.1);
    EXPECT_LT(max_diff, 1e-3) << "max |logit| " << max_abs;
    // the embedded tokenizer round-trips text
    auto tk = moe::Tokenizer::from_gguf(*model->file);
    EXPECT_EQ(tk->decode(tk->encode("And God said, Let there be light")), "And God said, Let there be light");
  }
}
