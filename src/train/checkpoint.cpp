// Checkpoint save/resume and GGUF export (see checkpoint.h).
#include "train/checkpoint.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/synth_vocab.h"
#include "ops/quant.h"

namespace moe::train {
namespace {

nlohmann::json shape_json(const ModelShape& s, const RoutingOptions& r) {
  return {{"n_vocab", s.n_vocab}, {"n_embd", s.n_embd}, {"n_layer", s.n_layer},
          {"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim},
          {"n_expert", s.n_expert}, {"n_expert_used", s.n_expert_used}, {"n_ff_exp", s.n_ff_exp},
          {"n_ff_shexp", s.n_ff_shexp}, {"n_ctx", s.n_ctx}, {"rms_eps", s.rms_eps},
          {"rope_base", s.rope_base}, {"balance", static_cast<int>(r.balance)},
          {"aux_alpha", r.aux_alpha}, {"z_coef", r.z_coef}, {"bias_gamma", r.bias_gamma},
          {"capacity_factor", r.capacity_factor}};
}

nlohmann::json read_header(std::ifstream& in, const std::string& path) {
  char magic[8];
  uint64_t len = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&len), 8);
  MOE_CHECK(in.good() && std::memcmp(magic, "MOETRAIN", 8) == 0 && len < (1u << 30),
            "{}: not a moe training checkpoint", path);
  std::string h(len, '\0');
  in.read(h.data(), static_cast<std::streamsize>(len));
  try {
    return nlohmann::json::parse(h);
  } catch (const std::exception& e) {
    throw_error("{}: corrupt checkpoint header: {}", path, e.what());
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainModel<float>& m, const AdamW& opt,
                     const TrainState& st) {
  std::ostringstream rng;
  rng << st.rng;
  nlohmann::json h = {{"shape", shape_json(m.shape(), m.routing)}, {"step", st.step},
                      {"adam_t", opt.t}, {"rng", rng.str()}, {"tokenizer", st.tokenizer},
                      {"n_params", m.w.size()}};
  const std::string hs = h.dump();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    MOE_CHECK(out.good(), "cannot write checkpoint '{}'", tmp);
    const uint64_t len = hs.size();
    out.write("MOETRAIN", 8);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(hs.data(), static_cast<std::streamsize>(hs.size()));
    for (const auto* v : {&m.w, &opt.m, &opt.v, &m.sel_bias})
      out.write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size() * 4));
    MOE_CHECK(out.good(), "error writing checkpoint '{}'", tmp);
  }
  MOE_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename {} to {}", tmp, path);
}

void read_checkpoint_header(const std::string& path, ModelShape& s, RoutingOptions& r) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in.good(), "cannot open checkpoint '{}'", path);
  const auto j = read_header(in, path).at("shape");
  s.n_vocab = j.at("n_vocab"), s.n_embd = j.at("n_embd"), s.n_layer = j.at("n_layer");
  s.n_head = j.at("n_head"), s.n_head_kv = j.at("n_head_kv"), s.head_dim = j.at("head_dim");
  s.n_expert = j.at("n_expert"), s.n_expert_used = j.at("n_expert_used");
  s.n_ff_exp = j.at("n_ff_exp"), s.n_ff_shexp = j.at("n_ff_shexp"), s.n_ctx = j.at("n_ctx");
  s.rms_eps = j.at("rms_eps"), s.rope_base = j.at("rope_base");
  r.balance = static_cast<Balance>(j.at("balance").get<int>());
  r.aux_alpha = j.at("aux_alpha"), r.z_coef = j.at("z_coef"), r.bias_gamma = j.at("bias_gamma");
  r.capacity_factor = j.at("capacity_factor");
}

void load_checkpoint(const std::string& path, TrainModel<float>& m, AdamW& opt, TrainState& st) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in.good(), "cannot open checkpoint '{}'", path);
  const auto h = read_header(in, path);
  MOE_CHECK(h.at("n_params").get<size_t>() == m.w.size(),
            "{}: checkpoint has {} parameters, the model {}", path, h.at("n_params").get<size_t>(),
            m.w.size());
  st.step = h.at("step");
  opt.t = h.at("adam_t");
  std::istringstream rng(h.at("rng").get<std::string>());
  rng >> st.rng;
  st.tokenizer = h.value("tokenizer", "");
  opt.m.resize(m.w.size());
  opt.v.resize(m.w.size());
  for (auto* v : {&m.w, &opt.m, &opt.v, &m.sel_bias})
    in.read(reinterpret_cast<char*>(v->data()), static_cast<std::streamsize>(v->size() * 4));
  MOE_CHECK(in.good(), "{}: checkpoint is truncated", path);
}

void export_gguf(const TrainModel<float>& m, const std::string& tokenizer_json,
                 const std::string& path, GgmlType type, const std::string& name) {
  const ModelShape& s = m.shape();
  SynthVocab vocab = vocab_from_tokenizer_json(tokenizer_json, "gpt2");
  MOE_CHECK(static_cast<int64_t>(vocab.tokens.size()) <= s.n_vocab,
            "export: tokenizer has {} tokens, the model {}", vocab.tokens.size(), s.n_vocab);
  for (int64_t k = 0; static_cast<int64_t>(vocab.tokens.size()) < s.n_vocab; ++k) {
    vocab.tokens.push_back("<|unused_" + std::to_string(k) + "|>");
    vocab.types.push_back(5);
  }
  gguf::Writer w;
  using gguf::Value;
  const std::string a = "qwen3moe";
  auto k = [&](const char* x) { return a + "." + x; };
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  w.set("general.architecture", Value::str(a));
  w.set("general.name", Value::str(name));
  w.set("general.file_type", u32(type == GgmlType::F16 ? 1 : 0));
  w.set(k("context_length"), u32(s.n_ctx));
  w.set(k("embedding_length"), u32(s.n_embd));
  w.set(k("block_count"), u32(s.n_layer));
  w.set(k("attention.head_count"), u32(s.n_head));
  w.set(k("attention.head_count_kv"), u32(s.n_head_kv));
  w.set(k("attention.key_length"), u32(s.head_dim));
  w.set(k("attention.value_length"), u32(s.head_dim));
  w.set(k("attention.layer_norm_rms_epsilon"), Value::f32(s.rms_eps));
  w.set(k("rope.freq_base"), Value::f32(s.rope_base));
  w.set(k("rope.dimension_count"), u32(s.head_dim));
  w.set(k("vocab_size"), u32(s.n_vocab));
  w.set(k("expert_count"), u32(s.n_expert));
  w.set(k("expert_used_count"), u32(s.n_expert_used));
  w.set(k("expert_feed_forward_length"), u32(s.n_ff_exp));
  w.set(k("feed_forward_length"), u32(s.n_ff_exp));
  if (s.n_ff_shexp > 0) w.set(k("expert_shared_feed_forward_length"), u32(s.n_ff_shexp));
  w.set("tokenizer.ggml.model", Value::str(vocab.model));
  w.set("tokenizer.ggml.pre", Value::str(vocab.pre));
  w.set("tokenizer.ggml.tokens", Value::strings(vocab.tokens));
  w.set("tokenizer.ggml.token_type", Value::i32s(vocab.types));
  w.set("tokenizer.ggml.merges", Value::strings(vocab.merges));
  if (vocab.bos >= 0) w.set("tokenizer.ggml.bos_token_id", u32(vocab.bos));
  if (vocab.eos >= 0) w.set("tokenizer.ggml.eos_token_id", u32(vocab.eos));
  if (vocab.pad >= 0) w.set("tokenizer.ggml.padding_token_id", u32(vocab.pad));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(vocab.add_bos));
  if (!vocab.chat_template.empty()) w.set("tokenizer.chat_template", Value::str(vocab.chat_template));

  for (const ParamTensor& t : m.layout().tensors) {
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    const float* src = m.w.data() + t.offset;
    // norms and the router stay f32 (the loader requires it); matrices take `type`
    const bool f32 = t.shape.size() == 1 || t.name.find("ffn_gate_inp") != std::string::npos;
    const GgmlType tt = f32 ? GgmlType::F32 : type;
    const int64_t n_in = ne[0], rows = static_cast<int64_t>(t.size) / n_in;
    const size_t rb = row_bytes(tt, n_in);
    std::vector<uint8_t> data(rb * rows);
    for (int64_t r = 0; r < rows; ++r) ops::quantize_row(tt, src + r * n_in, data.data() + r * rb, n_in);
    w.add_tensor(t.name, tt, ne, data);
    // the aux-free selection bias follows the router (inference adds it for selection)
    if (m.routing.balance == Balance::aux_free && t.name.find("ffn_gate_inp") != std::string::npos) {
      const int64_t il = std::stoll(t.name.substr(4));
      const float* b = m.sel_bias.data() + il * s.n_expert;
      w.add_tensor("blk." + std::to_string(il) + ".exp_probs_b.bias", GgmlType::F32, {s.n_expert},
                   {reinterpret_cast<const uint8_t*>(b), static_cast<size_t>(s.n_expert) * 4});
    }
  }
  w.write(path);
}

}  // namespace moe::train
