// The independent reference for model correctness: llama.cpp's logits for the
// random-weight models in ../shared/fixtures (see its README). For each case we
// run `Context::eval` over the whole sequence and check, per row,
// max_j |ours - ref| / max_j |ref| <= the manifest's tolerance, and the same
// argmax on every row whose reference top-1/top-2 gap exceeds 2 * tol * max|ref|.
// Skips (with a message) when the fixtures folder is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/context.h"
#include "model/model.h"
#include "model/reference/forward_ref.h"
#include "test_util.h"
#include "oracle.h"  // tests/common: MOE_REQUIRE_ORACLE (a failure under CI=true)

namespace moe {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(MOE_SHARED_DIR) / "fixtures";

bool arch_supported(const std::string& arch) {
  return arch == "qwen3moe" || arch == "olmoe" || arch == "llama" || arch == "qwen2moe" ||
         arch == "deepseek2" || arch == "gpt-oss";
}

std::vector<float> read_f32(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<float> v(fs::file_size(p) / 4);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

class Fixture : public ::testing::TestWithParam<std::string> {};

nlohmann::json manifest() {
  std::ifstream f(kFixtures / "manifest.json");
  return nlohmann::json::parse(f);
}

TEST_P(Fixture, MatchesLlamaCpp) {
  MOE_REQUIRE_ORACLE(fs::exists(kFixtures / "manifest.json"),
                     "llama.cpp fixtures at " << kFixtures << " (../shared/fixtures)");
  nlohmann::json c;
  const nlohmann::json m = manifest();
  for (const auto& x : m["cases"])
    if (x["id"] == GetParam()) c = x;
  ASSERT_FALSE(c.is_null()) << "case " << GetParam() << " not in manifest";
  const std::string arch = c["arch"];
  MOE_REQUIRE_ORACLE(arch_supported(arch), "support for fixture architecture " << arch);

  auto model = load_model((kFixtures / c["model"].get<std::string>()).string());
  // `moe inspect` numbers: total parameters as the manifest counts them; active =
  // total minus the routed experts a token does not use, from the hyper-parameters.
  for (const auto& mo : m["models"]) {
    if (mo["file"] != c["model"]) continue;
    EXPECT_EQ(model->cfg.n_params_total, mo["n_params"].get<int64_t>());
    const auto& hp = mo["hparams"];
    const int64_t X = hp["n_expert"], K = hp["n_expert_used"], E = hp["n_embd"], F = hp["n_ff_exp"];
    const int64_t moe_layers = hp["n_layer"].get<int64_t>() - hp.value("n_layer_dense_lead", 0);
    int64_t unused = moe_layers * 3 * E * F * (X - K);
    if (arch == "gpt-oss") unused += moe_layers * (2 * F + E) * (X - K);  // expert biases
    EXPECT_EQ(model->cfg.n_params_active, model->cfg.n_params_total - unused);
  }
  std::vector<int32_t> tokens = c["tokens"].get<std::vector<int32_t>>();
  const int64_t V = c["n_vocab"];
  Context ctx(model, {.n_ctx = static_cast<int64_t>(tokens.size()), .n_batch = 512, .n_threads = 2});
  std::vector<float> ours;
  ctx.eval(tokens, ours, true);
  std::vector<float> ref = read_f32(kFixtures / c["logits"].get<std::string>());
  ASSERT_EQ(ours.size(), ref.size());

  const double tol = c["tolerance"]["max_row_rel_err"];
  const int64_t n = static_cast<int64_t>(tokens.size());
  double worst = 0;
  int argmax_checked = 0;
  for (int64_t r = 0; r < n; ++r) {
    std::span<const float> o(ours.data() + r * V, V), f(ref.data() + r * V, V);
    const double err = test::max_row_rel_err(o, f, V);
    worst = moe::test::nan_max(worst, err);
    EXPECT_LE(err, tol) << "row " << r;
    // argmax on rows whose top-2 gap the tolerance cannot hide
    int64_t a = 0, b = -1;
    double mx = 0;
    for (int64_t j = 0; j < V; ++j) mx = moe::test::nan_max(mx, std::abs(double(f[j])));
    for (int64_t j = 1; j < V; ++j) if (f[j] > f[a]) a = j;
    for (int64_t j = 0; j < V; ++j) if (j != a && (b < 0 || f[j] > f[b])) b = j;
    if (f[a] - f[b] > 2 * tol * mx) {
      int64_t oa = 0;
      for (int64_t j = 1; j < V; ++j) if (o[j] > o[oa]) oa = j;
      EXPECT_EQ(oa, a) << "argmax differs on row " << r;
      ++argmax_checked;
    }
  }
  // The scalar reference forward pass must reproduce llama.cpp too (f32 cases; it is
  // the oracle of the CPU forward pass on every other model).
  if (c["weight_type"] == "f32" && n <= 16) {
    std::vector<float> r = reference::forward(*model, tokens);
    const double ref_err = test::max_row_rel_err(r, ref, V);
    std::printf("[fixture] %-24s reference forward max_row_rel_err %.3e\n", GetParam().c_str(), ref_err);
    EXPECT_LE(ref_err, tol);
  }
  double l2 = test::rel_l2(ours, ref);
  std::printf("[fixture] %-24s max_row_rel_err %.3e (tol %.0e)  rel_l2 %.3e  argmax rows %d/%lld\n",
              GetParam().c_str(), worst, tol, l2, argmax_checked, static_cast<long long>(n));
}

std::vector<std::string> case_ids() {
  std::vector<std::string> ids;
  if (!fs::exists(kFixtures / "manifest.json")) return {"none"};
  const nlohmann::json m = manifest();
  for (const auto& x : m["cases"]) ids.push_back(x["id"]);
  return ids;
}

INSTANTIATE_TEST_SUITE_P(Cases, Fixture, ::testing::ValuesIn(case_ids()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s) if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace moe
