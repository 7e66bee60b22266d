// Times training steps (forward + backward + AdamW) of a random-token batch on the
// shape of scripts/bench_train_torch.sh, with an optional stage breakdown. Not a
// test (no timing assertions anywhere): a tool for A/B runs of src/train.
//   train_step_bench [--threads 2] [--steps 20] [--warm 3] [--profile]
//                    [--layers 4 --embd 256 --heads 4 --kv-heads 2 --head-dim 64
//                     --experts 8 --top-k 2 --ff 128 --vocab 1024 --ctx 128 --batch 8]
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "train/model.h"
#include "train/ops.h"
#include "train/optimizer.h"
#include "train/profile.h"

using namespace moe::train;

int main(int argc, char** argv) {
  ModelShape s;
  s.n_layer = 4, s.n_embd = 256, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 64;
  s.n_expert = 8, s.n_expert_used = 2, s.n_ff_exp = 128, s.n_vocab = 1024, s.n_ctx = 128;
  int64_t batch = 8, steps = 20, warm = 3;
  int threads = 2;
  bool profile = false, gemm = false, cpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> int64_t { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--steps") steps = next();
    else if (a == "--warm") warm = next();
    else if (a == "--profile") profile = true;
    else if (a == "--gemm") gemm = true;
    else if (a == "--cpu") cpu = profile = true;  // stage CPU times of the main thread (use --threads 1)
    else if (a == "--layers") s.n_layer = next();
    else if (a == "--embd") s.n_embd = next();
    else if (a == "--heads") s.n_head = next();
    else if (a == "--kv-heads") s.n_head_kv = next();
    else if (a == "--head-dim") s.head_dim = next();
    else if (a == "--experts") s.n_expert = next();
    else if (a == "--top-k") s.n_expert_used = next();
    else if (a == "--ff") s.n_ff_exp = next();
    else if (a == "--shexp") s.n_ff_shexp = next();
    else if (a == "--vocab") s.n_vocab = next();
    else if (a == "--ctx") s.n_ctx = next();
    else if (a == "--batch") batch = next();
    else {
      fmt::print(stderr, "train_step_bench: unknown option {}\n", a);
      return 2;
    }
  }
  set_ftz_daz();
  moe::ThreadPool pool(threads);
  if (gemm) {  // GFLOP/s of the three layouts on a few training shapes
    struct Sh { const char* what; int64_t M, N, K; };
    for (const Sh& sh : {Sh{"1024x256x256", 1024, 256, 256}, Sh{"256x128x256", 256, 128, 256},
                         Sh{"256x256x128", 256, 256, 128}, Sh{"1024x1024x256", 1024, 1024, 256}}) {
      std::vector<float> A(sh.M * sh.K, 0.5f), B(sh.N * sh.K, 0.25f), C(sh.M * sh.N);
      for (int lay = 0; lay < 3; ++lay) {
        const int reps = static_cast<int>(std::max<int64_t>(20, 4000000000 / (2 * sh.M * sh.N * sh.K)));
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) {
          if (lay == 0) gemm_nt(A.data(), B.data(), C.data(), sh.M, sh.N, sh.K, false, &pool);
          if (lay == 1) gemm_nn(A.data(), B.data(), C.data(), sh.M, sh.K, sh.N, false, &pool);
          if (lay == 2) gemm_tn(A.data(), B.data(), C.data(), sh.K, sh.M, sh.N, true, &pool);
        }
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fmt::print("{:<22} {} {:6.1f} GFLOP/s\n", sh.what, lay == 0 ? "nt" : lay == 1 ? "nn" : "tn",
                   2.0 * sh.M * sh.N * sh.K * reps / dt / 1e9);
      }
    }
    return 0;
  }
  RoutingOptions ro;
  ro.aux_alpha = 0.01f;
  TrainModel<float> m(s, ro, &pool);
  init_params(m.layout(), m.w, 1);
  AdamW opt(m.w.size());
  OptimOptions oo;
  oo.total_steps = warm + steps, oo.warmup = 2;
  const int64_t S = s.n_ctx, N = batch * S;
  std::mt19937_64 rng(7);
  std::vector<int32_t> tok(N + 1);
  // a repetitive token stream (so routing is not uniform noise) with random offsets
  for (int64_t i = 0; i <= N; ++i) tok[i] = static_cast<int32_t>((i * 7 + (i / 13) * 3) % s.n_vocab);
  double t_sum = 0, c_sum = 0;
  for (int64_t it = 0; it < warm + steps; ++it) {
    if (it == warm && profile) prof::table() = prof::Table{true, cpu};
    const double c0 = prof::now(true);
    const auto t0 = std::chrono::steady_clock::now();
    {
      prof::Stage z(prof::zero_grad);
      m.zero_grad();
    }
    m.forward(tok.data(), tok.data() + 1, batch, S);
    m.backward(1.0f);
    {
      prof::Stage z(prof::optimizer);
      opt.step(m.layout(), m.w, m.g, 1e-3f, oo, &pool);
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (it >= warm) t_sum += dt, c_sum += prof::now(true) - c0;
    (void)rng;
  }
  fmt::print("{:.1f} tokens/s ({} steps of {} tokens, {} threads, {:.1f} ms/step; main thread CPU {:.1f} ms/step)\n",
             double(N * steps) / t_sum, steps, N, threads, 1e3 * t_sum / double(steps), 1e3 * c_sum / double(steps));
  if (profile) {
    const auto& t = prof::table();
    double tot = 0;
    for (int i = 0; i < prof::n_stages; ++i) tot += t.sec[i];
    for (int i = 0; i < prof::n_stages; ++i)
      if (t.calls[i] > 0)
        fmt::print("  {:<16} {:8.2f} ms/step {:5.1f} %\n", prof::name(i), 1e3 * t.sec[i] / double(steps),
                   100.0 * t.sec[i] / tot);
    fmt::print("  {:<16} {:8.2f} ms/step (step {:.2f})\n", "sum", 1e3 * tot / double(steps),
               1e3 * t_sum / double(steps));
  }
  return 0;
}
