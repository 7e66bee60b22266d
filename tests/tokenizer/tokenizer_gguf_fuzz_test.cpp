// Deterministic bounded mutation fuzzer for the GGUF tokenizer loader
// (Tokenizer::from_gguf over tokenizer.ggml.* metadata; runs in CI, labels
// tokenizer + fuzz). Seeds: a small byte-level `gpt2` vocabulary and a small
// `llama` SentencePiece vocabulary written with gguf::Writer. Mutations work on
// the metadata values (remove a key, replace it with a value of another type,
// change array elements to hostile values: NaN scores, token types out of 0..6,
// merges without a space, ids out of range, long strings) and, sometimes, on
// the serialized bytes. Every load must succeed or throw moe::Error; what loads
// is exercised with random text (tokenizer_fuzz_util.h).
// MOE_FUZZ_ITERS, MOE_FUZZ_SECONDS and MOE_FUZZ_SEED override the budget.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/timer.h"
#include "gguf/gguf.h"
#include "tokenizer/limits.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fuzz_util.h"

namespace moe::fuzz {
namespace {

using gguf::Value;
using gguf::ValueType;
using Meta = std::vector<std::pair<std::string, Value>>;

Meta gpt2_seed(const std::string& pre) {
  std::vector<std::string> toks;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    toks.push_back(tok::byte_level_encode(std::string(1, static_cast<char>(b))));
    types.push_back(b % 97 == 5 ? 6 : 1);
  }
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġ t"};
  for (const auto& m : merges) {
    const auto sp = m.find(' ');
    toks.push_back(m.substr(0, sp) + m.substr(sp + 1));
    types.push_back(1);
  }
  for (const char* s : {"<|im_start|>", "<|im_end|>", "<tool>", "[UNUSED]", "<unk>"}) toks.push_back(s);
  for (int t : {3, 3, 4, 5, 2}) types.push_back(t);
  const uint32_t n = static_cast<uint32_t>(toks.size());
  return {{"tokenizer.ggml.model", Value::str("gpt2")},
          {"tokenizer.ggml.pre", Value::str(pre)},
          {"tokenizer.ggml.tokens", Value::strings(toks)},
          {"tokenizer.ggml.token_type", Value::i32s(types)},
          {"tokenizer.ggml.merges", Value::strings(merges)},
          {"tokenizer.ggml.bos_token_id", Value::u32(n - 5)},
          {"tokenizer.ggml.eos_token_id", Value::u32(n - 4)},
          {"tokenizer.ggml.padding_token_id", Value::i32(-1)},
          {"tokenizer.ggml.eot_token_id", Value::u32(n - 4)},
          {"tokenizer.ggml.add_bos_token", Value::boolean(false)},
          {"tokenizer.chat_template", Value::str("{{ messages[0].content }}")}};
}

Meta llama_seed() {
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    toks.push_back(fmt::format("<0x{:02X}>", b));
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
  return {{"tokenizer.ggml.model", Value::str("llama")},
          {"tokenizer.ggml.tokens", Value::strings(toks)},
          {"tokenizer.ggml.token_type", Value::i32s(types)},
          {"tokenizer.ggml.scores", Value::f32s(scores)},
          {"tokenizer.ggml.bos_token_id", Value::u32(1)},
          {"tokenizer.ggml.eos_token_id", Value::u32(2)},
          {"tokenizer.ggml.unknown_token_id", Value::u32(0)},
          {"tokenizer.ggml.add_space_prefix", Value::boolean(true)}};
}

std::vector<Meta> make_seeds() {
  std::vector<Meta> seeds;
  for (const char* pre : {"gpt2", "llama-bpe", "qwen2", "deepseek-v3", "gpt-4o", "kimi-k2"}) seeds.push_back(gpt2_seed(pre));
  seeds.push_back(llama_seed());
  return seeds;
}

std::vector<uint8_t> serialize(const Meta& meta) {
  gguf::Writer w;
  w.set("general.architecture", Value::str("fuzz"));
  for (const auto& [k, v] : meta) w.set(k, v);
  return w.to_bytes();
}

Value interesting_int(std::mt19937& rng) {
  static const int64_t kInts[] = {-1, 0, 1, 2, 6, 7, 255, 256, 300, INT32_MAX, INT32_MIN, tok::kMaxVocab,
                                  INT64_MAX, INT64_MIN, 0xFFFFFFFFll, -2};
  const int64_t x = kInts[rng() % std::size(kInts)];
  switch (rng() % 5) {
    case 0: return Value::u32(static_cast<uint32_t>(x));
    case 1: return Value::i32(static_cast<int32_t>(x));
    case 2: return Value::i64(x);
    case 3: return Value::u64(static_cast<uint64_t>(x));
    default: return Value::u8(static_cast<uint8_t>(x));
  }
}

std::string hostile_string(std::mt19937& rng, const std::string& base) {
  switch (rng() % 8) {
    case 0: return "";
    case 1: return "nospace";
    case 2: return " ";
    case 3: return std::string(tok::kMaxTokenBytes + 1, 'a');
    case 4: return base + "\xFF\xC3";
    case 5: return "<0xZZ>";
    case 6: return base.empty() ? "x" : base.substr(0, rng() % base.size());
    default: return "<|im_start|>";
  }
}

// A value of the same element type, made hostile.
Value hostile_element(std::mt19937& rng, ValueType t, const Value& old) {
  switch (t) {
    case ValueType::STRING: return Value::str(hostile_string(rng, old.type == ValueType::STRING ? old.as_string() : ""));
    case ValueType::FLOAT32: {
      static const float kF[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity(), 1e30f, -0.0f};
      return Value::f32(kF[rng() % std::size(kF)]);
    }
    case ValueType::FLOAT64: return Value::f64(rng() % 2 ? 1e300 : std::nan(""));
    case ValueType::INT32: return Value::i32(static_cast<int32_t>((rng() % 2 ? rng() % 12 : rng()) - 3u));
    case ValueType::UINT32: return Value::u32(static_cast<uint32_t>(rng()));
    default: return interesting_int(rng);
  }
}

Value random_value(std::mt19937& rng) {
  switch (rng() % 9) {
    case 0: return Value::str("gpt2");
    case 1: return Value::str(hostile_string(rng, "abc"));
    case 2: return interesting_int(rng);
    case 3: return Value::f32(std::numeric_limits<float>::quiet_NaN());
    case 4: return Value::boolean(rng() & 1);
    case 5: return Value::i32s({1, 2, 3, -1});
    case 6: return Value::f32s({0.5f, std::numeric_limits<float>::quiet_NaN()});
    case 7: return Value::strings({"a b", "c"});
    default: return Value::array(ValueType::ARRAY, {Value::strings({"x"})});
  }
}

void mutate(Meta& meta, std::mt19937& rng) {
  if (meta.empty()) return;
  const size_t idx = rng() % meta.size();
  Value& v = meta[idx].second;
  switch (rng() % 7) {
    case 0:
      meta.erase(meta.begin() + static_cast<long>(idx));
      break;
    case 1: v = random_value(rng); break;
    case 2:
    case 3:
    case 4:
      if (v.type == ValueType::ARRAY) {
        auto& a = std::get<gguf::Array>(v.v);
        if (!a.items.empty()) {
          for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) {
            auto& item = a.items[rng() % a.items.size()];
            item = hostile_element(rng, a.elem_type, item);
          }
        }
      } else if (v.is_integer()) {
        v = interesting_int(rng);
      } else if (v.type == ValueType::STRING) {
        static const char* kNames[] = {"gpt2", "llama", "bert", "", "kimi-k2", "qwen2", "deepseek-v3", "nonsense", "gpt-4o"};
        v = Value::str(kNames[rng() % std::size(kNames)]);
      } else {
        v = random_value(rng);
      }
      break;
    case 5:  // truncate or grow an array
      if (v.type == ValueType::ARRAY) {
        auto& a = std::get<gguf::Array>(v.v);
        if (rng() % 2 && !a.items.empty()) a.items.resize(rng() % a.items.size());
        else if (!a.items.empty()) a.items.push_back(a.items[rng() % a.items.size()]);
      }
      break;
    default:  // a special-token id, present or not
      static const char* kIds[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                   "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                                   "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
      meta.emplace_back(kIds[rng() % std::size(kIds)], rng() % 4 ? interesting_int(rng) : random_value(rng));
      break;
  }
}

bool run_one(const std::vector<uint8_t>& bytes, std::mt19937& rng, Stats& st) {
  ++st.execs;
  Timer timer;
  try {
    const auto f = gguf::File::parse(bytes, "fuzz.gguf");
    auto tk = Tokenizer::from_gguf(f);
    ++st.accepted;
    const std::string bad = exercise(*tk, rng, st);
    if (!bad.empty()) {
      ADD_FAILURE() << bad;
      return false;
    }
  } catch (const moe::Error& e) {
    ++st.rejected;
    ++st.categories[category(e.what())];
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-moe::Error exception: " << e.what();
    return false;
  }
  st.max_exec_s = std::max(st.max_exec_s, timer.seconds());
  return true;
}

TEST(TokenizerGgufFuzz, SeedsLoad) {
  std::mt19937 rng(2);
  Stats st;
  for (const auto& m : make_seeds()) {
    const auto bytes = serialize(m);
    auto tk = Tokenizer::from_gguf(gguf::File::parse(bytes, "seed.gguf"));
    for (int i = 0; i < 20; ++i) ASSERT_EQ(exercise(*tk, rng, st), "");
  }
}

TEST(TokenizerGgufFuzz, KnownBadMetadata) {
  auto expect_error = [](Meta meta, const std::string& key, Value v, const std::string& needle) {
    bool found = false;
    for (auto& [k, old] : meta)
      if (k == key) { old = v; found = true; }
    if (!found) meta.emplace_back(key, v);
    const auto bytes = serialize(meta);
    try {
      Tokenizer::from_gguf(gguf::File::parse(bytes, "bad.gguf"));
      ADD_FAILURE() << key << ": accepted; expected an error containing '" << needle << "'";
    } catch (const moe::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
    }
  };
  const Meta g = gpt2_seed("gpt2"), l = llama_seed();
  expect_error(g, "tokenizer.ggml.eos_token_id", Value::u32(100000), "tokenizer.ggml.eos_token_id = 100000 is out of range");
  expect_error(g, "tokenizer.ggml.bos_token_id", Value::i32(-7), "tokenizer.ggml.bos_token_id = -7 is out of range");
  expect_error(g, "tokenizer.ggml.bos_token_id", Value::str("1"), "tokenizer.ggml.bos_token_id has type string");
  expect_error(g, "tokenizer.ggml.token_type", Value::i32s(std::vector<int32_t>(269, 9)), "token_type[0] = 9 is not a token type");
  expect_error(g, "tokenizer.ggml.tokens", Value::i32s({1, 2}), "tokenizer.ggml.tokens[0] has type int32, expected string");
  expect_error(g, "tokenizer.ggml.merges", Value::strings({"h e", "nospace"}), "tokenizer.ggml.merges[1] = 'nospace' has no space");
  expect_error(g, "tokenizer.ggml.pre", Value::str("nonsense"), "tokenizer.ggml.pre 'nonsense' is not known");
  expect_error(g, "tokenizer.ggml.tokens", Value::strings({}), "tokenizer.ggml.tokens is empty");
  std::vector<float> nan_scores(270, 0.0f);  // 3 + 256 + 11 tokens
  nan_scores[5] = std::numeric_limits<float>::quiet_NaN();
  expect_error(l, "tokenizer.ggml.scores", Value::f32s(nan_scores), "tokenizer.ggml.scores[5] is NaN");
  // -1 and 0xFFFFFFFF mean "none".
  Meta ok = g;
  ok.emplace_back("tokenizer.ggml.unknown_token_id", Value::u32(0xFFFFFFFFu));
  ok.emplace_back("tokenizer.ggml.padding_token_id", Value::u32(100000));  // unused: out of range means none
  EXPECT_NO_THROW(Tokenizer::from_gguf(gguf::File::parse(serialize(ok), "ok.gguf")));
}

TEST(TokenizerGgufFuzz, RandomMutations) {
  const uint64_t iters = env_or("MOE_FUZZ_ITERS", 200000);
  const double seconds = static_cast<double>(env_or("MOE_FUZZ_SECONDS", 20)) * 0.5;
  const std::vector<Meta> seeds = make_seeds();
  std::mt19937 rng(static_cast<uint32_t>(env_or("MOE_FUZZ_SEED", 20240611)));
  Stats st;
  Timer timer;
  uint64_t i = 0, unwritable = 0;
  for (; i < iters; ++i) {
    if ((i & 15) == 0 && timer.seconds() > seconds) break;
    Meta m = seeds[rng() % seeds.size()];
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) mutate(m, rng);
    std::vector<uint8_t> bytes;
    try {
      bytes = serialize(m);
    } catch (const moe::Error&) {
      ++unwritable;  // the writer refuses what the reader would refuse
      continue;
    }
    if (rng() % 5 == 0 && !bytes.empty()) {
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (rng() % 3 == 0) bytes.resize(rng() % bytes.size());
    }
    ASSERT_TRUE(run_one(bytes, rng, st)) << "iteration " << i;
  }
  std::printf("%.1f s, %llu iterations (%llu not writable)\n", timer.seconds(), static_cast<unsigned long long>(i),
              static_cast<unsigned long long>(unwritable));
  report("gguf random", st);
  EXPECT_GT(st.accepted, 0u);
  EXPECT_GT(st.rejected, 0u);
}

}  // namespace
}  // namespace moe::fuzz
