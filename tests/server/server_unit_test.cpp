// Unit tests of the server internals: UTF-8 stream sanitizing equals whole-string
// sanitizing, stop-string hold-back, request validation (400s with the right
// param), and the scheduler: jobs decoded together in one batch produce exactly
// the greedy tokens of each job decoded alone, and prompt-prefix reuse.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"
#include "server/api.h"
#include "server/scheduler.h"
#include "server/text.h"

namespace moe::server {
namespace {

TEST(ServerText, SanitizeKnownCases) {
  EXPECT_EQ(sanitize_utf8("abc"), "abc");
  EXPECT_EQ(sanitize_utf8("\xC3\x28"), "\xEF\xBF\xBD(");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), "\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xE2\x82(\xFF"), "\xEF\xBF\xBD(\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(ServerText, StreamEqualsWhole) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "\xC3", "\xA9", "\xE2", "\x82", "\xAC", "\xF0", "\x9F", "\x98", "\x80", "\xFF", " "};
  for (int it = 0; it < 2000; ++it) {
    std::string s;
    const int n = rng() % 24;
    for (int i = 0; i < n; ++i) s += alphabet[rng() % 12];
    Utf8Stream st;
    std::string out;
    for (size_t i = 0; i < s.size();) {
      const size_t k = 1 + rng() % 4;
      out += st.push(s.substr(i, k));
      i += k;
    }
    out += st.flush();
    ASSERT_EQ(out, sanitize_utf8(s)) << it;
  }
}

TEST(ServerText, StopStrings) {
  StopMatcher m({"o w", "xyz"});
  std::string out = m.push("Hel");
  out += m.push("lo");  // "o" may start "o w": held
  EXPECT_EQ(out, "Hell");
  out += m.push(" world");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out, "Hell");
  StopMatcher n({"END"});
  std::string t = n.push("abcE");
  t += n.push("N");
  t += n.push("x");
  EXPECT_FALSE(n.stopped());
  EXPECT_EQ(t + n.flush(), "abcENx");
}

struct ModelFixture : ::testing::Test {
  static void SetUpTestSuite() {
    path = (std::filesystem::temp_directory_path() / ("moe_server_unit_" + std::to_string(getpid()) + ".gguf")).string();
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

TEST_F(ModelFixture, Validation) {
  Limits lim{.n_ctx = 64, .max_prompt_tokens = 0, .max_tokens = 32, .default_max_tokens = 0};
  const std::string tmpl = kChatMlTemplate;
  PromptContext pc{*tok, tmpl, lim};
  auto param_of = [&](const char* body, bool chat) {
    try {
      auto j = parse_body(body);
      chat ? parse_chat(j, pc) : parse_completion(j, pc);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return e.param.empty() ? std::string("<none>") : e.param;
    }
    return std::string("<ok>");
  };
  EXPECT_EQ(param_of("{", true), "<none>");
  EXPECT_EQ(param_of("{\"messages\":[]}", true), "messages");
  EXPECT_EQ(param_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":33}", true), "max_tokens");
  EXPECT_EQ(param_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":3}", true), "temperature");
  EXPECT_EQ(param_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}", true), "<ok>");
  EXPECT_EQ(param_of("{\"prompt\":\"hi\",\"max_tokens\":8,\"logprobs\":21}", false), "logprobs");
  EXPECT_EQ(param_of("{\"prompt\":[1,2,3],\"max_tokens\":8}", false), "<ok>");
  auto j = parse_body("{\"prompt\":\"hello\"}");
  auto r = parse_completion(j, pc);
  // What the context leaves, capped by the max_tokens limit.
  EXPECT_EQ(r.gen.max_tokens, std::min<int64_t>(32, 64 - static_cast<int64_t>(r.gen.prompt.size())));
}

std::vector<int32_t> run_job(Scheduler& s, std::shared_ptr<Job> job) {
  EXPECT_TRUE(s.submit(job));
  std::vector<Piece> ps;
  while (!job->take(ps, std::chrono::milliseconds(100))) {
  }
  EXPECT_TRUE(job->finish_reason == "length" || job->finish_reason == "stop") << job->finish_reason << job->error;
  std::vector<int32_t> ids;
  for (auto& p : ps)
    for (auto& lp : p.logprobs) ids.push_back(lp.id);
  return ids;
}

std::shared_ptr<Job> make_job(const std::vector<int32_t>& prompt, int n) {
  auto job = std::make_shared<Job>();
  job->params.prompt = prompt;
  job->params.max_tokens = n;
  job->params.sampler.temperature = 0;
  job->params.top_logprobs = 0;  // record the ids
  job->params.ignore_eos = true;
  return job;
}

TEST_F(ModelFixture, BatchedEqualsSolo) {
  std::vector<std::vector<int32_t>> prompts;
  const char* texts[] = {"The quick brown fox", "Mixture of experts", "a", "Hello, world! How are you today?",
                         "routers pick two experts per token", "KV cache", "zzz", "one two three four five six"};
  for (const char* t : texts) prompts.push_back(tok->encode(t, true, true));
  // Reference: the plain single-sequence loop of `moe run`.
  std::vector<std::vector<int32_t>> ref;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Context ctx(model, {.n_ctx = 128, .n_seq = 1, .n_batch = 64, .n_threads = 2});
    std::vector<float> logits;
    ctx.eval(prompts[i], logits, false);
    std::vector<int32_t> out;
    for (int k = 0; k < 12 + static_cast<int>(i); ++k) {
      const int32_t id = argmax(logits);
      out.push_back(id);
      const int32_t one[1] = {id};
      ctx.eval(one, logits, false);
    }
    ref.push_back(out);
  }
  const Tokenizer& tk = *tok;
  Scheduler s(model, tk, {.n_ctx = 128, .n_seq = 4, .n_batch = 16, .n_threads = 2});
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < prompts.size(); ++i) jobs.push_back(make_job(prompts[i], 12 + static_cast<int>(i)));
  for (auto& j : jobs) ASSERT_TRUE(s.submit(j));  // 8 jobs on 4 slots: queueing and joining mid-batch
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::vector<Piece> ps;
    while (!jobs[i]->take(ps, std::chrono::milliseconds(100))) {
    }
    std::vector<int32_t> ids;
    for (auto& p : ps)
      for (auto& lp : p.logprobs) ids.push_back(lp.id);
    EXPECT_EQ(ids, ref[i]) << "job " << i;
  }
  // Prefix reuse: the same prompt again is served from the cache and gives the same tokens.
  auto again = make_job(prompts[7], 19);
  EXPECT_EQ(run_job(s, again), ref[7]);
  EXPECT_EQ(again->n_cached, static_cast<int64_t>(prompts[7].size()) - 1);
  const auto st = s.stats();
  EXPECT_GT(st.generated_tokens, 100);
  EXPECT_EQ(st.slots_busy, 0);
}

TEST_F(ModelFixture, CancelAndDrain) {
  Scheduler s(model, *tok, {.n_ctx = 256, .n_seq = 2, .n_batch = 32, .n_threads = 2});
  auto a = make_job(tok->encode("cancel me", true, true), 200);
  ASSERT_TRUE(s.submit(a));
  a->cancelled = true;
  std::vector<Piece> ps;
  while (!a->take(ps, std::chrono::milliseconds(50))) {
  }
  EXPECT_EQ(a->finish_reason, "cancelled");
  auto b = make_job(tok->encode("finish me", true, true), 20);
  ASSERT_TRUE(s.submit(b));
  s.drain(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(b->done);
  EXPECT_EQ(b->finish_reason, "length");
  EXPECT_FALSE(s.submit(make_job({1, 2}, 2)));  // draining: refused
}

}  // namespace
}  // namespace moe::server
