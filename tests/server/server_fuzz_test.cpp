// Bounded deterministic mutation fuzzer of HTTP request bodies (ctest labels server
// and fuzz). Valid chat and completion bodies are mutated (byte flips, JSON tokens,
// extreme numbers, invalid UTF-8, deletions, duplicated spans, splices, truncation,
// deep nesting around a value) and random JSON trees up to 100 deep are planted in
// every field; each body runs through request_fuzz.h's oracle for both endpoints,
// with ChatML and a template that renders message extras, tools and kwargs by tojson.
// Fixed seeds and counts (MOE_FUZZ_ITERS scales them); it prints the executions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <unistd.h>

#include "base/error.h"
#include "model/model.h"
#include "model/synth.h"
#include "request_fuzz.h"

namespace moe::server {
namespace {

using json = nlohmann::json;

// Renders what clients may nest deeply: extra message fields, tools, kwargs.
const char* const kToolTemplate =
    "{%- if tools is defined and tools %}<tools>{{ tools | tojson }}</tools>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{%- if m.tool_calls is defined %}{{ m.tool_calls | tojson }}{% endif %}"
    "{%- if m.name is defined %}{{ m.name | tojson }}{% endif %}<|im_end|>\n{% endfor %}"
    "{%- if extra is defined %}{{ extra | tojson }}{% endif %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const std::vector<std::string> kChatSeeds = {
    R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":8})",
    R"({"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Hello, world!"}],"temperature":0.7,"top_p":0.9,"seed":42,"stop":["\n","END"],"max_tokens":16,"stream":true,"stream_options":{"include_usage":true}})",
    R"({"messages":[{"role":"user","content":[{"type":"text","text":"part one "},{"type":"text","text":"part two"}]}],"logprobs":true,"top_logprobs":3,"max_completion_tokens":4})",
    R"({"messages":[{"role":"user","content":"call a tool"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":[1,2,{\"y\":null}]}"}}]},{"role":"tool","content":"42","name":"f"}],"chat_template_kwargs":{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"array"}}}}}],"extra":{"a":[1,[2,[3]]]}},"max_tokens":4})",
    R"({"messages":[{"role":"user","content":"bias"}],"logit_bias":{"5":100,"7":-100,"11":0.5},"top_k":40,"min_p":0.05,"repeat_penalty":1.1,"repeat_last_n":32,"presence_penalty":0.5,"frequency_penalty":-0.5,"ignore_eos":true,"user":"u","n":1,"max_tokens":3})",
    R"({"messages":[{"role":"developer","content":"\u00e9\u4e2d\ud83d\ude00 \\ \" \/ \b\f\n\r\t"},{"role":"user","content":"<|im_start|>special"}],"max_tokens":2})",
};
const std::vector<std::string> kCompletionSeeds = {
    R"({"prompt":"Once upon a time","max_tokens":8})",
    R"({"model":"m","prompt":["one string"],"max_tokens":4,"temperature":0,"logprobs":5,"echo":false,"suffix":""})",
    R"({"prompt":[1,2,3,4,5,100,511],"max_tokens":4,"stop":"x","seed":-9223372036854775808})",
    R"({"prompt":[[1,2,3]],"max_tokens":1,"logit_bias":{"1":-1},"top_p":1,"stream":false})",
};

const std::vector<std::string> kTokens = {
    "[", "]", "{", "}", "\"", ",", ":", "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", "null", "true", "false",
    "0", "-0", "-", "1e308", "1e309", "-1e308", "4.9e-324", "9223372036854775807", "9223372036854775808",
    "9223372036854775808.0", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "1e19", "0.5", "2.5", "NaN", "Infinity", "\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    std::string(1, '\0'), "\"messages\"", "\"role\"", "\"content\"", "\"prompt\"", "\"max_tokens\"", "\"seed\"",
    "\"logit_bias\"", "\"stop\"", "\"chat_template_kwargs\"", "\"tools\"", "\"tool_calls\"", "\"type\"",
    "\"text\"", "\"user\"", "\"assistant\"", "\"temperature\"", "\"top_k\"", "\"logprobs\"", "{\"a\":", "[[[[",
    "]]]]", "\"" + std::string(300, 'x') + "\"", "{{ ", " }}", "{%", "%}", "<|im_start|>", "<|im_end|>",
};

const std::vector<std::string> kFields = {
    "messages", "content", "extra_message_field", "tool_calls", "chat_template_kwargs", "tools", "stop",
    "logit_bias", "seed", "max_tokens", "temperature", "prompt", "stream_options", "user", "name"};

struct Mutator {
  std::mt19937_64 rng;
  explicit Mutator(uint64_t seed) : rng(seed) {}
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); }

  // A random JSON value nested up to `depth` levels (arrays, objects, scalars), at
  // most `budget` containers in all (a branching tree 100 deep would never end).
  json tree(int depth, int& budget) {
    if (depth <= 0 || budget <= 0 || below(4) == 0) {
      switch (below(7)) {
        case 0: return nullptr;
        case 1: return static_cast<int64_t>(rng());
        case 2: return std::ldexp(static_cast<double>(below(1000)) - 500, static_cast<int>(below(2000)) - 1000);
        case 3: return std::string(below(20), static_cast<char>('a' + below(26)));
        case 4: return below(2) == 1;
        case 5: return "{{ '" + std::string(below(8), 'x') + "' }}";
        default: return static_cast<uint64_t>(rng());
      }
    }
    budget--;
    if (below(2) == 0) {
      json a = json::array();
      const size_t n = 1 + below(3);
      for (size_t i = 0; i < n; ++i) a.push_back(tree(depth - 1, budget));
      return a;
    }
    json o = json::object();
    const size_t n = 1 + below(3);
    for (size_t i = 0; i < n; ++i) o[kFields[below(kFields.size())]] = tree(depth - 1, budget);
    return o;
  }

  // A seed with a deep tree planted in one field (the structure a client controls).
  std::string plant(const std::string& seed) {
    json j = json::parse(seed);
    const int depth = static_cast<int>(below(100));
    int budget = 300;
    json v = tree(depth, budget);
    // A straight chain reaches the full depth even when the random tree stops early.
    if (below(2) == 0)
      for (int i = 0; i < depth; ++i) v = below(2) ? json::array({v}) : json{{"k", v}};
    const std::string& f = kFields[below(kFields.size())];
    if (j.contains("messages") && below(2) == 0) {
      auto& m = j["messages"][below(j["messages"].size())];
      m[f == "messages" ? "content" : f] = v;
    } else {
      j[f] = v;
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  std::string mutate(std::string s, const std::vector<std::string>& pool) {
    const size_t n_ops = 1 + below(2) * below(4);
    for (size_t op = 0; op < n_ops; ++op) {
      const size_t at = below(s.size() + 1);
      switch (below(9)) {
        case 0:
          if (!s.empty()) s[below(s.size())] = static_cast<char>(rng());
          break;
        case 1: s.insert(at, kTokens[below(kTokens.size())]); break;
        case 2: s.erase(at, below(16)); break;
        case 3: {  // duplicate a span (repeats brackets: nesting)
          const size_t len = below(std::min<size_t>(64, s.size() - std::min(at, s.size()) + 1));
          s.insert(at, s.substr(at, len));
          break;
        }
        case 4: {  // splice from another seed
          const std::string& o = pool[below(pool.size())];
          const size_t from = below(o.size());
          s.replace(at, below(32), o.substr(from, below(64)));
          break;
        }
        case 5: {  // an extreme number instead of the next digit run
          const size_t d = s.find_first_of("0123456789", at);
          if (d != std::string::npos)
            s.replace(d, s.find_first_not_of("0123456789.eE+-", d) - d, kTokens[17 + below(15)]);
          break;
        }
        case 6: s.resize(at); break;  // truncated
        case 7: {                     // deep nesting around whatever starts here
          const size_t k = 1 + below(below(8) == 0 ? 100000 : 120);
          s.insert(at, std::string(k, below(2) ? '[' : '{'));
          s.insert(std::min(s.size(), at + k + below(40)), std::string(k, ']'));
          break;
        }
        default: s.insert(at, 1, static_cast<char>(0x80 + below(0x80)));  // a stray UTF-8 byte
      }
    }
    return s;
  }
};

struct FuzzFixture : ::testing::Test {
  static void SetUpTestSuite() {
    path = (std::filesystem::temp_directory_path() / ("moe_server_fuzz_" + std::to_string(getpid()) + ".gguf")).string();
    SynthOptions o;
    o.type = GgmlType::Q8_0;
    o.std = 0;
    synthesize_model(o, path);
    model = load_model(path);
    tok = Tokenizer::from_gguf(*model->file);
  }
  static void TearDownTestSuite() {
    tok.reset();
    model.reset();
    std::filesystem::remove(path);
  }
  static inline std::string path;
  static inline std::shared_ptr<Model> model;
  static inline std::unique_ptr<Tokenizer> tok;
};

int64_t iterations(int64_t base) {
  const char* e = std::getenv("MOE_FUZZ_ITERS");  // scale: MOE_FUZZ_ITERS=10 runs 10x the default
  return e ? base * std::max<int64_t>(1, std::atoll(e)) : base;
}

std::string hex_head(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(s.size(), 200); ++i) out += fmt::format("{:02x}", static_cast<unsigned char>(s[i]));
  return out;
}

TEST_F(FuzzFixture, SeedsAreAccepted) {
  const Limits lim{.n_ctx = 2048, .max_prompt_tokens = 0, .max_tokens = 64, .default_max_tokens = 0};
  for (const std::string& tmpl : {std::string(kChatMlTemplate), std::string(kToolTemplate)}) {
    const PromptContext pc{*tok, tmpl, lim};
    for (const auto& s : kChatSeeds) {
      std::string param;
      EXPECT_EQ(fuzz::run_one(s, true, pc, &param), fuzz::Outcome::accepted) << s << " param " << param;
    }
    for (const auto& s : kCompletionSeeds) {
      std::string param;
      EXPECT_EQ(fuzz::run_one(s, false, pc, &param), fuzz::Outcome::accepted) << s << " param " << param;
    }
  }
}

TEST_F(FuzzFixture, MutatedBodies) {
  const Limits lim{.n_ctx = 2048, .max_prompt_tokens = 0, .max_tokens = 64, .default_max_tokens = 0};
  const std::string tmpls[2] = {kChatMlTemplate, kToolTemplate};
  std::vector<std::string> pool = kChatSeeds;
  pool.insert(pool.end(), kCompletionSeeds.begin(), kCompletionSeeds.end());
  Mutator mut(0x5EED5EEDull);
  const int64_t n = iterations(20000);
  int64_t accepted = 0, rejected = 0, planted = 0;
  std::map<std::string, int64_t> by_param;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < n; ++it) {
    const bool chat = it % 3 != 2;
    const auto& seeds = chat ? kChatSeeds : kCompletionSeeds;
    std::string body;
    if (it % 5 == 4) {
      body = mut.plant(seeds[mut.below(seeds.size())]);
      planted++;
    } else {
      body = mut.mutate(seeds[mut.below(seeds.size())], pool);
    }
    const PromptContext pc{*tok, tmpls[it % 2], lim};
    for (const bool as_chat : {chat, !chat}) {  // each body through both endpoints
      std::string param;
      try {
        if (fuzz::run_one(body, as_chat, pc, &param) == fuzz::Outcome::accepted) {
          accepted++;
        } else {
          rejected++;
          by_param[param.empty() ? "(body)" : param]++;
        }
      } catch (const std::exception& e) {
        FAIL() << "iteration " << it << (as_chat ? " chat" : " completion") << ": " << e.what()
               << "\nbody (hex, first 200 bytes): " << hex_head(body);
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("server fuzz: %lld bodies (%lld with planted trees), %lld executions: %lld accepted, %lld rejected "
              "(4xx), 0 crashes, %.1f s (%.0f exec/s)\n",
              static_cast<long long>(n), static_cast<long long>(planted), static_cast<long long>(accepted + rejected),
              static_cast<long long>(accepted), static_cast<long long>(rejected), secs, (accepted + rejected) / secs);
  std::printf("rejections by param:");
  for (const auto& [p, c] : by_param) std::printf(" %s=%lld", p.c_str(), static_cast<long long>(c));
  std::printf("\n");
  // The mix must exercise both outcomes, or the mutations are too weak / too strong.
  EXPECT_GT(accepted, n / 20);
  EXPECT_GT(rejected, n / 4);
  EXPECT_GT(by_param["(body)"], 0);
}

}  // namespace
}  // namespace moe::server
