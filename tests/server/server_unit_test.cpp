// Unit tests of the server internals: UTF-8 stream sanitizing equals whole-string
// sanitizing, stop-string hold-back, request validation (400s with the right
// param, the nesting limit, number ranges, logit_bias), API keys (sources and the
// constant-time comparison), and the scheduler: jobs decoded together in one batch
// produce exactly the greedy tokens of each job decoded alone, prompt-prefix reuse,
// a bad job failing alone, the bounded queue, and concurrent submitters (the
// ThreadSanitizer run covers this file).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"
#include "base/error.h"
#include "server/api.h"
#include "server/auth.h"
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

TEST(ServerApi, NestingLimit) {
  auto nested = [](int depth) {
    std::string s = "{\"a\":";
    for (int i = 1; i < depth - 1; ++i) s += "[";
    s += "1";
    for (int i = 1; i < depth - 1; ++i) s += "]";
    return s + "}";
  };
  // nested(d) opens d - 1 containers (the object, then d - 2 arrays).
  EXPECT_NO_THROW(parse_body(nested(kMaxJsonDepth + 1)));
  try {
    parse_body(nested(kMaxJsonDepth + 2));
    FAIL() << "65 levels accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "nesting_too_deep");
  }
  // The crash: 50,000 levels (100 KB) are refused at the 65th.
  std::string deep = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"x\":" + std::string(50000, '[') +
                     std::string(50000, ']') + "}]}";
  EXPECT_THROW(parse_body(deep), ApiError);
  EXPECT_THROW(parse_body(std::string(8 << 20, '{')), ApiError);
}

TEST(ServerAuth, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("Bearer k1", "Bearer k1"));
  EXPECT_FALSE(constant_time_equal("Bearer k2", "Bearer k1"));
  EXPECT_FALSE(constant_time_equal("Bearer k", "Bearer k1"));
  EXPECT_FALSE(constant_time_equal("Bearer k1x", "Bearer k1"));
  EXPECT_FALSE(constant_time_equal("", "Bearer k1"));
  EXPECT_FALSE(constant_time_equal(std::string("Bearer k1\0", 10), "Bearer k1"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(ServerAuth, KeySources) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string f = (dir / ("moe_key_" + std::to_string(getpid()))).string();
  std::ofstream(f) << "  s3cret-key \nsecond line ignored\n";
  EXPECT_EQ(resolve_api_key("", f, "fromenv"), "s3cret-key");  // the file wins over the environment
  EXPECT_EQ(resolve_api_key("cli", "", "fromenv"), "cli");
  EXPECT_EQ(resolve_api_key("", "", "fromenv"), "fromenv");
  EXPECT_EQ(resolve_api_key("", "", nullptr), "");
  EXPECT_EQ(resolve_api_key("", "", ""), "");
  EXPECT_THROW(resolve_api_key("cli", f, nullptr), Error);
  EXPECT_THROW(resolve_api_key("", f + ".missing", nullptr), Error);
  std::ofstream(f) << "\n";
  EXPECT_THROW(resolve_api_key("", f, nullptr), Error);
  std::ofstream(f) << "with space\n";
  EXPECT_THROW(resolve_api_key("", f, nullptr), Error);
  std::ofstream(f) << std::string(5000, 'k');
  EXPECT_THROW(resolve_api_key("", f, nullptr), Error);
  std::filesystem::remove(f);
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
  // Numbers: every float -> integer cast is range-checked first (2^63 used to reach
  // an undefined cast), every range is closed and named.
  const std::string m = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8,";
  auto chat_param = [&](const std::string& extra) { return param_of((m + extra + "}").c_str(), true); };
  EXPECT_EQ(chat_param("\"seed\":9223372036854775808.0"), "seed");
  EXPECT_EQ(chat_param("\"seed\":-9223372036854775809.0e3"), "seed");
  EXPECT_EQ(chat_param("\"seed\":1e19"), "seed");
  EXPECT_EQ(chat_param("\"seed\":18446744073709551615"), "seed");
  EXPECT_EQ(chat_param("\"seed\":-9223372036854775808"), "<ok>");
  EXPECT_EQ(chat_param("\"seed\":-9223372036854775808.0"), "<ok>");
  EXPECT_EQ(chat_param("\"seed\":9223372036854774784.0"), "<ok>");  // largest double below 2^63
  EXPECT_EQ(chat_param("\"max_completion_tokens\":1e300"), "max_completion_tokens");
  EXPECT_EQ(chat_param("\"top_k\":1e10"), "top_k");
  EXPECT_EQ(chat_param("\"top_k\":-1"), "top_k");
  EXPECT_EQ(chat_param("\"min_p\":1.5"), "min_p");
  EXPECT_EQ(chat_param("\"top_p\":-0.0"), "top_p");
  EXPECT_EQ(chat_param("\"repeat_penalty\":0"), "repeat_penalty");
  EXPECT_EQ(chat_param("\"repeat_penalty\":4.9e-324"), "repeat_penalty");  // 0.0f as a float (fuzz finding)
  EXPECT_EQ(chat_param("\"top_p\":1e-300"), "top_p");
  EXPECT_EQ(chat_param("\"repeat_last_n\":1e300"), "repeat_last_n");
  EXPECT_EQ(chat_param("\"presence_penalty\":2.5"), "presence_penalty");
  EXPECT_EQ(chat_param("\"frequency_penalty\":-1e309"), "<none>");  // -inf is not JSON: malformed
  EXPECT_EQ(chat_param("\"top_logprobs\":21,\"logprobs\":true"), "top_logprobs");
  EXPECT_EQ(chat_param("\"n\":1.0"), "<ok>");
  EXPECT_EQ(chat_param("\"user\":5"), "user");
  EXPECT_EQ(chat_param("\"stop\":\"" + std::string(257, 'x') + "\""), "stop");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"5\":100,\"7\":-100}"), "<ok>");
  EXPECT_EQ(chat_param("\"logit_bias\":[1]"), "logit_bias");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"5\":100.5}"), "logit_bias");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"-1\":1}"), "logit_bias");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"512\":1}"), "logit_bias");  // vocab 512
  EXPECT_EQ(chat_param("\"logit_bias\":{\"5x\":1}"), "logit_bias");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"99999999999999999999\":1}"), "logit_bias");
  EXPECT_EQ(chat_param("\"logit_bias\":{\"5\":\"1\"}"), "logit_bias");
  // A template that throws is this request's fault: 400 naming messages, not 500.
  const std::string bad_tmpl = "{{ messages[0].content + raise_exception('no') }}";
  PromptContext bad_pc{*tok, bad_tmpl, lim};
  try {
    parse_chat(parse_body(m + "\"seed\":1}"), bad_pc);
    FAIL() << "a failing template was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages");
    EXPECT_EQ(e.code, "chat_template_error");
  }
  auto lb = parse_chat(parse_body(m + "\"logit_bias\":{\"5\":100,\"7\":-1.5}}"), pc);
  EXPECT_EQ(lb.gen.logit_bias, (std::vector<std::pair<int32_t, float>>{{5, 100.f}, {7, -1.5f}}));
  auto j = parse_body("{\"prompt\":\"hello\"}");
  auto r = parse_completion(j, pc);
  // What the context leaves, capped by the max_tokens limit.
  EXPECT_EQ(r.gen.max_tokens, std::min<int64_t>(32, 64 - static_cast<int64_t>(r.gen.prompt.size())));
}

std::vector<int32_t> run_job(Scheduler& s, std::shared_ptr<Job> job) {
  EXPECT_EQ(s.submit(job), Submit::ok);
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
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Submit::ok);  // 8 jobs on 4 slots: queueing and joining mid-batch
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
  ASSERT_EQ(s.submit(a), Submit::ok);
  a->cancelled = true;
  std::vector<Piece> ps;
  while (!a->take(ps, std::chrono::milliseconds(50))) {
  }
  EXPECT_EQ(a->finish_reason, "cancelled");
  auto b = make_job(tok->encode("finish me", true, true), 20);
  ASSERT_EQ(s.submit(b), Submit::ok);
  s.drain(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(b->done);
  EXPECT_EQ(b->finish_reason, "length");
  EXPECT_EQ(s.submit(make_job({1, 2}, 2)), Submit::draining);  // draining: refused
}

// Greedy tokens of `prompt` decoded alone with the plain single-sequence loop.
std::vector<int32_t> solo_greedy(const std::shared_ptr<Model>& model, const std::vector<int32_t>& prompt, int n) {
  Context ctx(model, {.n_ctx = 128, .n_seq = 1, .n_batch = 64, .n_threads = 2});
  std::vector<float> logits;
  ctx.eval(prompt, logits, false);
  std::vector<int32_t> out;
  for (int k = 0; k < n; ++k) {
    out.push_back(argmax(logits));
    const int32_t one[1] = {out.back()};
    ctx.eval(one, logits, false);
  }
  return out;
}

void wait_done(Job& job) {
  std::vector<Piece> ps;
  while (!job.take(ps, std::chrono::milliseconds(50))) {
  }
}

// One bad job (an id past the vocabulary, a prompt longer than the context) used to
// fail every job of its batch; now it fails alone and the others give the solo tokens.
TEST_F(ModelFixture, FailedDecodeFailsAlone) {
  const int64_t n_vocab = model->cfg.n_vocab;
  const auto p1 = tok->encode("good job one", true, true), p2 = tok->encode("good job two, longer", true, true);
  const auto ref1 = solo_greedy(model, p1, 20), ref2 = solo_greedy(model, p2, 20);
  Scheduler s(model, *tok, {.n_ctx = 64, .n_seq = 4, .n_batch = 32, .n_threads = 2});
  auto g1 = make_job(p1, 20), g2 = make_job(p2, 20);
  std::vector<int32_t> bad_ids = p1;
  bad_ids.push_back(static_cast<int32_t>(n_vocab));  // out of range
  auto b1 = make_job(bad_ids, 5);
  auto b2 = make_job(std::vector<int32_t>(100, 1), 5);  // 100 tokens > context 64
  auto b3 = make_job({}, 5);                            // empty prompt
  auto b4 = make_job(p1, 200);                          // runs past the context while generating
  for (auto* j : {&g1, &b1, &b2, &g2, &b3, &b4}) ASSERT_EQ(s.submit(*j), Submit::ok);
  for (auto* j : {&g1, &b1, &b2, &g2, &b3, &b4}) wait_done(**j);
  EXPECT_EQ(b1->finish_reason, "error");
  EXPECT_NE(b1->error.find("out of range"), std::string::npos) << b1->error;
  EXPECT_EQ(b2->finish_reason, "error");
  EXPECT_NE(b2->error.find("context"), std::string::npos) << b2->error;
  EXPECT_EQ(b3->finish_reason, "error");
  EXPECT_EQ(b4->finish_reason, "error");
  // Positions 0..63 hold prompt and generated tokens; the token sampled from position 63 is never fed.
  EXPECT_EQ(b4->n_generated, 64 - static_cast<int64_t>(p1.size()) + 1);
  EXPECT_EQ(g1->finish_reason, "length") << g1->error;
  EXPECT_EQ(g2->finish_reason, "length") << g2->error;
  // Same again with the good jobs' tokens checked, a bad job joining mid-generation.
  auto g3 = make_job(p1, 20), g4 = make_job(p2, 20), b5 = make_job(bad_ids, 3);
  ASSERT_EQ(s.submit(g3), Submit::ok);
  ASSERT_EQ(s.submit(g4), Submit::ok);
  std::vector<Piece> first;
  while (first.empty() && !g3->take(first, std::chrono::milliseconds(20))) {
  }
  ASSERT_EQ(s.submit(b5), Submit::ok);
  std::vector<Piece> r3 = std::move(first), r4;
  while (!g3->take(r3, std::chrono::milliseconds(50))) {
  }
  while (!g4->take(r4, std::chrono::milliseconds(50))) {
  }
  wait_done(*b5);
  EXPECT_EQ(b5->finish_reason, "error");
  auto flat = [](const std::vector<Piece>& ps) {
    std::vector<int32_t> v;
    for (auto& p : ps)
      for (auto& lp : p.logprobs) v.push_back(lp.id);
    return v;
  };
  EXPECT_EQ(flat(r3), ref1);
  EXPECT_EQ(flat(r4), ref2);
  EXPECT_EQ(s.stats().slots_busy, 0);
}

TEST_F(ModelFixture, QueueBound) {
  Scheduler s(model, *tok, {.n_ctx = 256, .n_seq = 1, .n_batch = 32, .n_threads = 2}, /*max_queue=*/2);
  auto a = make_job(tok->encode("long running", true, true), 200);
  ASSERT_EQ(s.submit(a), Submit::ok);
  std::vector<Piece> ps;
  while (ps.empty() && !a->take(ps, std::chrono::milliseconds(20))) {
  }
  // a holds the only slot; two may wait, the third is refused.
  auto b = make_job({1, 2, 3}, 4), c = make_job({1, 2, 4}, 4), d = make_job({1, 2, 5}, 4);
  EXPECT_EQ(s.submit(b), Submit::ok);
  EXPECT_EQ(s.submit(c), Submit::ok);
  EXPECT_EQ(s.submit(d), Submit::queue_full);
  EXPECT_FALSE(d->done);
  for (auto* j : {&a, &b, &c}) wait_done(**j);
  EXPECT_EQ(b->finish_reason, "length");
  EXPECT_EQ(c->finish_reason, "length");
  EXPECT_EQ(s.submit(d), Submit::ok);  // room again
  wait_done(*d);
  EXPECT_EQ(d->finish_reason, "length");
}

TEST_F(ModelFixture, LogitBias) {
  Scheduler s(model, *tok, {.n_ctx = 128, .n_seq = 2, .n_batch = 32, .n_threads = 2});
  auto j = make_job(tok->encode("bias me", true, true), 8);
  j->params.logit_bias = {{42, 100.f}};
  EXPECT_EQ(run_job(s, j), std::vector<int32_t>(8, 42));
  auto k = make_job(tok->encode("bias me", true, true), 8);
  const auto plain = solo_greedy(model, k->params.prompt, 8);
  k->params.logit_bias = {{plain[0], -100.f}};
  EXPECT_NE(run_job(s, k)[0], plain[0]);
}

// Many threads submit, cancel and read stats at once (run under ThreadSanitizer by
// the lead): every accepted job ends, refused ones are untouched, counts add up.
TEST_F(ModelFixture, ConcurrentSubmitters) {
  Scheduler s(model, *tok, {.n_ctx = 128, .n_seq = 3, .n_batch = 32, .n_threads = 2}, /*max_queue=*/4);
  constexpr int kThreads = 8, kJobs = 12;
  std::atomic<int> accepted{0}, refused{0}, cancelled{0}, finished{0};
  std::atomic<bool> stop_stats{false};
  std::thread stats_reader([&] {
    while (!stop_stats) {
      const auto st = s.stats();
      EXPECT_LE(st.queue_depth, 4);
      EXPECT_LE(st.slots_busy, 3);
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < kJobs; ++i) {
        auto job = make_job({1, static_cast<int32_t>(2 + t), static_cast<int32_t>(3 + i)}, 3 + static_cast<int>(rng() % 6));
        if (s.submit(job) != Submit::ok) {
          refused++;
          EXPECT_FALSE(job->done);
          continue;
        }
        accepted++;
        if (rng() % 4 == 0) job->cancelled = true;
        wait_done(*job);
        if (job->finish_reason == "cancelled") {
          cancelled++;
        } else {
          EXPECT_EQ(job->finish_reason, "length") << job->error;
          EXPECT_EQ(job->n_generated, job->params.max_tokens);
          finished++;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  stop_stats = true;
  stats_reader.join();
  EXPECT_EQ(accepted + refused, kThreads * kJobs);
  EXPECT_EQ(cancelled + finished, accepted.load());
  EXPECT_GT(accepted.load(), 0);
  const auto st = s.stats();
  EXPECT_EQ(st.jobs_done, accepted.load());
  EXPECT_EQ(st.queue_depth, 0);
  std::printf("concurrent submitters: %d accepted (%d cancelled), %d refused (queue full)\n", accepted.load(),
              cancelled.load(), refused.load());
}

}  // namespace
}  // namespace moe::server
