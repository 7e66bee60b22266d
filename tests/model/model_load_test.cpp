// Loading errors: every malformed model gets an error naming the file, the
// tensor or key, the expected and the found value (never a crash).
#include <gtest/gtest.h>

#include <functional>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "test_util.h"

namespace moe {
namespace {

using Edit = std::function<void(std::vector<std::pair<std::string, gguf::Value>>&,
                                std::vector<gguf::TensorInfo>&)>;

// Re-writes a synthesized model through gguf::Writer with an edit applied.
std::string rewrite(const std::string& src, const std::string& name, const Edit& edit) {
  auto f = gguf::File::open(src);
  auto kv = f.metadata();
  auto tensors = f.tensors();
  edit(kv, tensors);
  gguf::Writer w;
  for (auto& [k, v] : kv) w.set(k, v);
  for (const auto& t : tensors) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    size_t bytes = row_bytes(t.type, t.ne[0]) * t.ne[1] * t.ne[2] * t.ne[3];
    std::vector<uint8_t> data(bytes);
    // keep the original bytes where the size still fits, random otherwise
    for (size_t i = 0; i < bytes; ++i)
      data[i] = i < t.nbytes ? static_cast<const uint8_t*>(t.data)[i] : static_cast<uint8_t>(i * 31 + 7);
    w.add_tensor(t.name, t.type, ne, data);
  }
  std::string path = test::temp_dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

std::string base_model() {
  static std::string p = [] {
    SynthOptions o;
    o.n_layer = 1;
    o.n_embd = 64;
    o.head_dim = 16;
    o.n_vocab = 300;
    o.n_expert = 4;
    o.n_ff_exp = 32;
    return test::synth(o, "base");
  }();
  return p;
}

void expect_error(const std::string& path, std::initializer_list<const char*> needles) {
  try {
    load_model(path);
    FAIL() << "expected an error loading " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const char* n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

TEST(ModelLoad, BaseModelLoads) {
  auto m = load_model(base_model());
  EXPECT_EQ(m->cfg.arch, "qwen3moe");
  EXPECT_EQ(m->cfg.n_expert, 4);
  EXPECT_LT(m->cfg.n_params_active, m->cfg.n_params_total);
}

TEST(ModelLoad, UnknownArchitecture) {
  auto p = rewrite(base_model(), "unknown_arch", [](auto& kv, auto&) {
    for (auto& [k, v] : kv)
      if (k == "general.architecture") v = gguf::Value::str("mamba9");
  });
  expect_error(p, {"unknown architecture", "mamba9"});
}

TEST(ModelLoad, MissingRequiredKey) {
  auto p = rewrite(base_model(), "missing_key", [](auto& kv, auto&) {
    std::erase_if(kv, [](const auto& e) { return e.first == "qwen3moe.block_count"; });
  });
  expect_error(p, {"qwen3moe.block_count"});
}

TEST(ModelLoad, MissingTensor) {
  auto p = rewrite(base_model(), "missing_tensor", [](auto&, auto& ts) {
    std::erase_if(ts, [](const auto& t) { return t.name == "blk.0.ffn_up_exps.weight"; });
  });
  expect_error(p, {"blk.0.ffn_up_exps.weight", "missing"});
}

TEST(ModelLoad, ShapeDisagreesWithHyperParameters) {
  auto p = rewrite(base_model(), "bad_shape", [](auto&, auto& ts) {
    for (auto& t : ts)
      if (t.name == "blk.0.attn_q.weight") t.ne[1] = 32;
  });
  expect_error(p, {"blk.0.attn_q.weight", "[64, 32]", "[64, 64]"});
}

TEST(ModelLoad, ExpertCountDisagrees) {
  auto p = rewrite(base_model(), "bad_experts", [](auto& kv, auto&) {
    for (auto& [k, v] : kv)
      if (k == "qwen3moe.expert_count") v = gguf::Value::u32(6);
  });
  expect_error(p, {"ffn_gate_inp", "expected"});
}

TEST(ModelLoad, TopKLargerThanExperts) {
  auto p = rewrite(base_model(), "bad_topk", [](auto& kv, auto&) {
    for (auto& [k, v] : kv)
      if (k == "qwen3moe.expert_used_count") v = gguf::Value::u32(9);
  });
  expect_error(p, {"expert_used_count", "9"});
}

TEST(ModelLoad, UnsupportedWeightType) {
  auto p = rewrite(base_model(), "bad_type", [](auto&, auto& ts) {
    for (auto& t : ts)
      if (t.name == "blk.0.attn_k.weight") t.type = GgmlType::Q8_K, t.ne[0] = 256, t.ne[1] = 8;
  });
  // q8_K is an activation format only; shape is checked first, so only the name is certain
  expect_error(p, {"blk.0.attn_k.weight"});
}

TEST(ModelLoad, WrongTypeForNorm) {
  auto p = rewrite(base_model(), "norm_f16", [](auto&, auto& ts) {
    for (auto& t : ts)
      if (t.name == "output_norm.weight") t.type = GgmlType::F16;
  });
  expect_error(p, {"output_norm.weight", "f16", "expected f32"});
}

}  // namespace
}  // namespace moe
