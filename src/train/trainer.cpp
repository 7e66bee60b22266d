// The training loop (see trainer.h).
#include "train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/plot.h"
#include "train/profile.h"

namespace moe::train {
namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string fmt_time(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = static_cast<int64_t>(s);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

}  // namespace

TrainResult run_training(const TrainOptions& o) {
  MOE_CHECK(!o.data.empty(), "train: no data files (--data)");
  MOE_CHECK(o.batch > 0 && o.accum > 0, "train: batch {} and accumulation {} must be positive", o.batch, o.accum);
  std::filesystem::create_directories(o.out_dir);
  set_ftz_daz();
  ModelShape shape = o.shape;
  RoutingOptions routing = o.routing;
  TrainState st;
  st.rng.seed(o.seed);
  st.tokenizer = o.tokenizer;
  if (!o.resume.empty()) read_checkpoint_header(o.resume, shape, routing);
  if (st.tokenizer.empty() && !o.resume.empty()) {
    // the tokenizer path recorded in the checkpoint
    TrainModel<float> probe(shape, routing, nullptr);
    AdamW tmp(probe.w.size());
    TrainState s2;
    load_checkpoint(o.resume, probe, tmp, s2);
    st.tokenizer = s2.tokenizer;
  }
  MOE_CHECK(!st.tokenizer.empty(), "train: no tokenizer (--tokenizer tokenizer.json; make one with "
            "`moe tokenizer-train`)");
  auto tok = Tokenizer::from_json(st.tokenizer);
  if (o.resume.empty()) shape.n_vocab = tok->n_vocab();
  MOE_CHECK(tok->n_vocab() <= shape.n_vocab, "train: tokenizer has {} tokens, the checkpoint {}",
            tok->n_vocab(), shape.n_vocab);

  const double t_tok = now_s();
  const auto tokens = tokenize_files(*tok, o.data);
  const Dataset ds = split_dataset(tokens, o.val_frac, shape.n_ctx + 1);
  if (o.progress)
    fmt::print(stderr, "moe train: {} tokens ({} train, {} validation) in {:.1f} s\n", tokens.size(),
               ds.train.size(), ds.val.size(), now_s() - t_tok);

  const int n_threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  ThreadPool pool(n_threads);
  TrainModel<float> m(shape, routing, &pool);
  AdamW opt(m.w.size());
  if (o.resume.empty()) {
    init_params(m.layout(), m.w, o.seed);
  } else {
    const std::string tk = st.tokenizer;
    load_checkpoint(o.resume, m, opt, st);
    st.tokenizer = tk;
  }
  const int64_t S = shape.n_ctx, B = o.batch, X = shape.n_expert, Lr = shape.n_layer;
  TrainResult res;
  res.n_params = static_cast<int64_t>(m.layout().n_params);
  res.n_active = m.layout().n_active;
  if (o.progress)
    fmt::print(stderr, "moe train: {:.2f} M parameters ({:.2f} M active), {} experts top-{}, {} threads\n",
               res.n_params / 1e6, res.n_active / 1e6, X, shape.n_expert_used, n_threads);

  std::ofstream log(o.out_dir + "/metrics.jsonl", o.resume.empty() ? std::ios::trunc : std::ios::app);
  std::vector<int32_t> tk, tg;
  std::vector<int64_t> total_load(Lr * X, 0);
  Series tr{"train", {}, {}}, va{"validation", {}, {}};
  auto validate = [&]() {
    double sum = 0;
    int64_t n = 0;
    for (int64_t k = 0; k < o.eval_batches; ++k) {
      val_batch(ds.val, B, S, k, tk, tg);
      const auto ls = m.forward(tk.data(), tg.data(), B, S);
      sum += ls.ce * double(ls.n_targets);
      n += ls.n_targets;
    }
    return n > 0 ? sum / double(n) : 0.0;
  };
  // MOE_TRAIN_PROFILE=1: wall-clock stage breakdown of the steps on stderr at the end
  const char* prof_env = std::getenv("MOE_TRAIN_PROFILE");
  prof::table() = prof::Table{};
  prof::table().on = prof_env && *prof_env && std::string(prof_env) != "0";
  const double t0 = now_s();
  int64_t tokens_done = 0;
  double ema = 0;
  const int64_t first = st.step;
  for (; st.step < o.optim.total_steps; ++st.step) {
    const float lr = lr_at(o.optim, st.step);
    {
      prof::Stage pz(prof::zero_grad);
      m.zero_grad();
    }
    m.reset_load();
    LossStats sum;
    for (int64_t a = 0; a < o.accum; ++a) {
      prof::Stage pd(prof::data);
      sample_batch(ds.train, B, S, st.rng, tk, tg);
      pd.stop();
      const auto ls = m.forward(tk.data(), tg.data(), B, S);
      m.backward(1.0f / float(o.accum));
      sum.ce += ls.ce / double(o.accum);
      sum.aux += ls.aux / double(o.accum);
      sum.z += ls.z / double(o.accum);
      sum.n_dropped += ls.n_dropped;
    }
    if (routing.balance == Balance::aux_free) m.update_bias();
    prof::Stage po(prof::optimizer);
    const double gnorm = opt.step(m.layout(), m.w, m.g, lr, o.optim, &pool);
    po.stop();
    prof::Stage pb(prof::bookkeeping);
    tokens_done += B * S * o.accum;
    for (size_t i = 0; i < total_load.size(); ++i) total_load[i] += m.load[i];
    const double el = now_s() - t0, tps = tokens_done / std::max(el, 1e-9);
    ema = st.step == first ? sum.ce : 0.95 * ema + 0.05 * sum.ce;
    nlohmann::json j = {{"step", st.step + 1}, {"loss", sum.ce}, {"aux", sum.aux}, {"z", sum.z},
                        {"lr", lr}, {"grad_norm", gnorm}, {"tokens_per_s", tps},
                        {"tokens", (st.step + 1) * B * S * o.accum}, {"dropped", sum.n_dropped}};
    std::vector<double> lm;
    for (int64_t il = 0; il < Lr; ++il) {
      int64_t mx = 0, tot = 0;
      for (int64_t e = 0; e < X; ++e) mx = std::max(mx, m.load[il * X + e]), tot += m.load[il * X + e];
      lm.push_back(tot > 0 ? double(mx) * double(X) / double(tot) : 0.0);
    }
    j["load_max_over_mean"] = lm;
    tr.x.push_back(double(st.step + 1));
    tr.y.push_back(sum.ce);
    const bool last = st.step + 1 == o.optim.total_steps;
    const bool out_of_time = (o.time_limit_s > 0 && el > o.time_limit_s) ||
                             (o.stop_after > 0 && st.step + 1 - first >= o.stop_after);
    pb.stop();
    if ((o.eval_every > 0 && (st.step + 1) % o.eval_every == 0) || last || out_of_time) {
      const double vl = validate();
      j["val_loss"] = vl;
      va.x.push_back(double(st.step + 1));
      va.y.push_back(vl);
      res.final_val_loss = vl;
    }
    log << j.dump() << "\n";
    log.flush();
    if (o.progress) {
      const int64_t left = o.optim.total_steps - st.step - 1;
      const double eta = el / double(st.step + 1 - first) * double(left);
      const int bar = static_cast<int>(20.0 * double(st.step + 1) / double(o.optim.total_steps));
      fmt::print(stderr, "\r[{:<20}] step {}/{} loss {:.3f} (ema {:.3f}){} lr {:.2e} {:.0f} tok/s ETA {}   ",
                 std::string(bar, '#'), st.step + 1, o.optim.total_steps, sum.ce, ema,
                 j.contains("val_loss") ? fmt::format(" val {:.3f}", j["val_loss"].get<double>()) : "",
                 lr, tps, fmt_time(eta));
      if (j.contains("val_loss")) fmt::print(stderr, "\n");
    }
    res.final_train_loss = sum.ce;
    res.tokens_per_s = tps;
    if ((o.save_every > 0 && (st.step + 1) % o.save_every == 0) || last || out_of_time) {
      TrainState s2 = st;
      s2.step = st.step + 1;
      save_checkpoint(o.out_dir + "/checkpoint.bin", m, opt, s2);
    }
    if (out_of_time) {
      ++st.step;
      break;
    }
  }
  res.steps = st.step;
  if (prof::table().on) {
    const auto& pt = prof::table();
    const double n_steps = double(std::max<int64_t>(1, st.step - first));
    double tot = 0;
    for (int i = 0; i < prof::n_stages; ++i) tot += pt.sec[i];
    fmt::print(stderr, "moe train: stage profile (wall ms per step; validation included in the forward stages)\n");
    for (int i = 0; i < prof::n_stages; ++i)
      if (pt.calls[i] > 0)
        fmt::print(stderr, "  {:<16} {:8.2f} {:5.1f} %\n", prof::name(i), 1e3 * pt.sec[i] / n_steps, 100.0 * pt.sec[i] / tot);
    fmt::print(stderr, "  {:<16} {:8.2f} ms; loop {:.2f} ms per step\n", "sum", 1e3 * tot / n_steps,
               1e3 * (now_s() - t0) / n_steps);
    prof::table().on = false;
  }
  // plots
  write_line_chart(o.out_dir + "/loss.svg", "Loss", "step", "cross-entropy (nats)", {tr, va});
  std::vector<std::vector<double>> frac(Lr, std::vector<double>(X, 0.0));
  for (int64_t il = 0; il < Lr; ++il) {
    int64_t tot = 0, mx = 0;
    for (int64_t e = 0; e < X; ++e) tot += total_load[il * X + e], mx = std::max(mx, total_load[il * X + e]);
    for (int64_t e = 0; e < X; ++e) frac[il][e] = tot > 0 ? double(total_load[il * X + e]) / double(tot) : 0;
    res.load_max_over_mean.push_back(tot > 0 ? double(mx) * double(X) / double(tot) : 0.0);
  }
  write_load_chart(o.out_dir + "/expert_load.svg", "Expert load per layer", frac);
  const std::string out = o.export_path.empty() ? o.out_dir + "/model.gguf" : o.export_path;
  MOE_CHECK(o.export_type == "f32" || o.export_type == "f16", "train: --export-type {} (f32 or f16)", o.export_type);
  export_gguf(m, st.tokenizer, out, o.export_type == "f16" ? GgmlType::F16 : GgmlType::F32, "moe-train");
  {
    nlohmann::json sj = {{"steps", res.steps}, {"train_loss", res.final_train_loss},
                         {"val_loss", res.final_val_loss}, {"tokens_per_s", res.tokens_per_s},
                         {"n_params", res.n_params}, {"n_active", res.n_active},
                         {"n_expert", X}, {"top_k", shape.n_expert_used},
                         {"tokens", res.steps * B * S * o.accum},
                         {"load_max_over_mean", res.load_max_over_mean}};
    std::ofstream(o.out_dir + "/summary.json") << sj.dump(1) << "\n";
  }
  if (o.progress)
    fmt::print(stderr, "moe train: {} steps, train loss {:.4f}, validation loss {:.4f}, {:.0f} tok/s; wrote {}\n",
               res.steps, res.final_train_loss, res.final_val_loss, res.tokens_per_s, out);
  return res;
}

}  // namespace moe::train
