// The HTTP layer of `moe serve`: routes, API-key check, OpenAI-style errors, SSE
// streaming through chunked content providers (client disconnects cancel the job),
// limits and timeouts, and the graceful shutdown / signal handling of run_server().
// Bounds: every request body is read by our own receiver (at most --max-body bytes,
// whatever the transfer encoding or content type), a full job queue answers 429 with
// Retry-After, and accepted connections wait in a bounded queue for a worker.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/text.h"

namespace moe::server {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// cpp-httplib 0.11's ThreadPool queues accepted connections without bound, and its
// TaskQueue::enqueue (void) cannot refuse one. This pool holds at most `max_pending`
// connections waiting for a worker; past that enqueue() blocks the accept thread, so
// further clients wait in the kernel's listen backlog (1024) and are then refused.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(size_t n_threads, size_t max_pending) : max_pending_(std::max<size_t>(max_pending, 1)) {
    for (size_t i = 0; i < n_threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedThreadPool() override { shutdown(); }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lk(mu_);
    not_full_.wait(lk, [&] { return jobs_.size() < max_pending_ || stop_; });
    jobs_.push_back(std::move(fn));
    not_empty_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_ && threads_.empty()) return;
      stop_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        not_empty_.wait(lk, [&] { return !jobs_.empty() || stop_; });
        if (jobs_.empty()) return;  // stopping and nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      not_full_.notify_one();
      fn();
    }
  }
  size_t max_pending_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

struct Server::Impl {
  ServerOptions o;
  Limits limits;
  std::shared_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::string chat_template;
  std::unique_ptr<Scheduler> sched;
  Metrics metrics;
  httplib::Server http;
  int listen_fd = -1;
  Clock::time_point started = Clock::now();
  int64_t created = 0;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> shutting_down{false};
  std::once_flag shutdown_once;

  explicit Impl(const ServerOptions& opts);
  void routes();
  void send_error(httplib::Response& res, const ApiError& e);
  std::string read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void generate(ParsedRequest r, httplib::Response& res);
  PromptContext prompt_context() const { return {*tok, chat_template, limits}; }
};

void Server::Impl::send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  (e.status >= 500 ? metrics.errors_5xx : metrics.errors_4xx)++;
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  res.set_content(dump(error_json(e)), "application/json");
}

// Every POST body comes through here, not through cpp-httplib's own reader: 0.11 reads
// chunked and length-less bodies without any bound, and caps form-encoded bodies (the
// default Content-Type of `curl -d`) at 8 KiB with a bare 413. Ours: --max-body for all.
std::string Server::Impl::read_body(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
  const auto too_large = [this] {
    return ApiError{413, fmt::format("the request body exceeds the limit of {} bytes (--max-body)", o.max_body_bytes),
                    "invalid_request_error", "", "payload_too_large"};
  };
  if (req.is_multipart_form_data()) {
    res.set_header("Connection", "close");  // its body stays unread
    throw ApiError{415, "multipart bodies are not accepted: send the JSON request body", "invalid_request_error", "",
                   "unsupported_media_type"};
  }
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (n > o.max_body_bytes - body.size()) {
      over = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (over || res.status == 413) {
    res.set_header("Connection", "close");
    throw too_large();
  }
  if (!ok) {
    res.set_header("Connection", "close");
    throw ApiError{400, "the request body could not be read (cut short, or a malformed chunked encoding)",
                   "invalid_request_error", "", ""};
  }
  return body;
}

Server::Impl::Impl(const ServerOptions& opts) : o(opts) {
  MOE_CHECK(o.n_slots >= 1 && o.n_slots <= 256, "serve: -np must be in 1..256 (got {})", o.n_slots);
  MOE_CHECK(o.n_ctx >= 8, "serve: context size {} is too small", o.n_ctx);
  model = load_model(o.model_path);
  tok = Tokenizer::from_gguf(*model->file);
  if (o.alias.empty()) o.alias = std::filesystem::path(o.model_path).filename().string();
  chat_template = tok->chat_template();
  if (chat_template.empty()) {
    MOE_LOG_WARN("serve: the model has no chat template; /v1/chat/completions uses ChatML");
    chat_template = kChatMlTemplate;
  }
  try {
    render_chat(chat_template, json::array({{{"role", "user"}, {"content", "hi"}}}), true);
  } catch (const std::exception& e) {
    MOE_LOG_WARN("serve: the model's chat template does not render: {}", e.what());
  }
  limits.n_ctx = o.n_ctx;
  limits.max_prompt_tokens = o.max_prompt_tokens;
  limits.max_tokens = o.max_tokens;
  limits.default_max_tokens = o.default_max_tokens;
  created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  sched = std::make_unique<Scheduler>(model, *tok,
                                      ContextOptions{.n_ctx = o.n_ctx, .n_seq = o.n_slots, .n_batch = o.n_batch,
                                                     .n_threads = o.n_threads, .kv_f16 = o.kv_f16},
                                      o.max_queue);
  routes();
}

// Runs one generation: SSE stream, or a JSON body once done. Both use a chunked
// provider so that a client that goes away is noticed (failed write) and cancelled.
void Server::Impl::generate(ParsedRequest r, httplib::Response& res) {
  if (shutting_down) throw ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"};
  auto job = std::make_shared<Job>();
  job->params = std::move(r.gen);
  auto rq = std::make_shared<ParsedRequest>(std::move(r));
  const std::string prefix = rq->endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-";
  auto meta = std::make_shared<ResponseMeta>(ResponseMeta{
      fmt::format("{}{:x}{:06x}", prefix, created, next_id++), o.alias,
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()});
  switch (sched->submit(job)) {
    case Submit::ok:
      break;
    case Submit::queue_full:
      metrics.rejected_busy++;
      throw ApiError{429,
                     fmt::format("the server is busy: {} requests already wait for a slot (--max-queue); retry later",
                                 o.max_queue),
                     "server_error", "", "queue_full", /*retry_after_s=*/1};
    case Submit::draining:
      throw ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"};
  }

  struct State {
    bool first = true;
    size_t offset = 0;
    std::string text;
    std::vector<TokenLogprob> lps;
    Clock::time_point last_write = Clock::now();
  };
  auto st = std::make_shared<State>();
  auto releaser = [this, job](bool) {
    std::lock_guard<std::mutex> lk(job->mu);
    if (!job->done) {
      job->cancelled = true;
      metrics.disconnects++;
    }
  };
  if (rq->stream) {
    metrics.streams_open++;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, rq, meta, st](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& s) {
            st->last_write = Clock::now();
            if (sink.write(s.data(), s.size())) return true;
            job->cancelled = true;
            return false;
          };
          auto event = [&](const json& c) { return send("data: " + dump(c) + "\n\n"); };
          if (st->first && rq->endpoint == Endpoint::chat) {
            const std::string empty;
            if (!event(stream_chunk(*rq, *meta, &empty, true, "", nullptr))) return false;
          }
          st->first = false;
          std::vector<Piece> ps;
          const bool done = job->take(ps, std::chrono::milliseconds(500));
          for (auto& p : ps) {
            if (p.text.empty() && !(rq->logprobs && !p.logprobs.empty())) continue;
            json lp = rq->logprobs ? logprobs_json(*rq, *tok, p.logprobs, st->offset) : json(nullptr);
            st->offset += p.text.size();
            if (!event(stream_chunk(*rq, *meta, &p.text, false, "", lp))) return false;
          }
          if (done) {
            if (job->finish_reason == "error" || job->finish_reason == "cancelled") {
              const std::string msg = job->finish_reason == "error" ? job->error : "the request was cancelled (server shutdown)";
              if (!event(error_json({500, msg, "server_error", "", ""}))) return false;
            } else {
              const std::string empty;
              if (!event(stream_chunk(*rq, *meta, rq->endpoint == Endpoint::chat ? nullptr : &empty, false,
                                      job->finish_reason, nullptr)))
                return false;
              if (rq->include_usage && !event(usage_chunk(*rq, *meta, *job))) return false;
            }
            if (!send("data: [DONE]\n\n")) return false;
            sink.done();
            return true;
          }
          if (ps.empty() && Clock::now() - st->last_write > std::chrono::seconds(2))
            return send(": keep-alive\n\n");
          return true;
        },
        [this, releaser](bool ok) {
          metrics.streams_open--;
          releaser(ok);
        });
    return;
  }
  res.set_chunked_content_provider(
      "application/json",
      [this, job, rq, meta, st](size_t, httplib::DataSink& sink) {
        std::vector<Piece> ps;
        const bool done = job->take(ps, std::chrono::milliseconds(500));
        for (auto& p : ps) {
          st->text += p.text;
          for (auto& lp : p.logprobs) st->lps.push_back(std::move(lp));
        }
        if (done) {
          json body;
          if (job->finish_reason == "error" || job->finish_reason == "cancelled")
            body = error_json({500, job->finish_reason == "error" ? job->error : "the request was cancelled (server shutdown)",
                               "server_error", "", ""});
          else
            body = final_response(*rq, *meta, *job, st->text, st->lps, *tok);
          const std::string s = dump(body) + "\n";
          if (!sink.write(s.data(), s.size())) return false;
          sink.done();
          return true;
        }
        // Whitespace before a JSON value is harmless; writing it notices a gone client.
        if (Clock::now() - st->last_write > std::chrono::seconds(2)) {
          st->last_write = Clock::now();
          if (!sink.write(" ", 1)) {
            job->cancelled = true;
            return false;
          }
        }
        return true;
      },
      releaser);
}

void Server::Impl::routes() {
  using Req = httplib::Request;
  using Res = httplib::Response;
  using Reader = httplib::ContentReader;
  auto guarded = [this](Res& res, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, {500, sanitize_utf8(e.what()), "server_error", "", ""});
    }
  };
  auto wrap = [this, guarded](Route route, std::function<void(const Req&, Res&)> fn) {
    return [this, route, fn, guarded](const Req& req, Res& res) {
      metrics.count(route);
      guarded(res, [&] { fn(req, res); });
    };
  };
  // POST routes: the body is read (bounded) by read_body, then fn(req, res, body).
  auto wrap_body = [this, guarded](Route route, std::function<void(const Req&, Res&, const std::string&)> fn) {
    return [this, route, fn, guarded](const Req& req, Res& res, const Reader& reader) {
      metrics.count(route);
      guarded(res, [&] { fn(req, res, read_body(req, res, reader)); });
    };
  };
  http.Get("/health", wrap(Route::health, [this](const Req&, Res& res) {
    const auto s = sched->stats();
    if (shutting_down) res.status = 503;
    res.set_content(dump({{"status", shutting_down ? "shutting down" : "ok"},
                          {"slots_idle", s.slots_total - s.slots_busy},
                          {"slots_processing", s.slots_busy},
                          {"queue_depth", s.queue_depth}}),
                    "application/json");
  }));
  http.Get("/metrics", wrap(Route::metrics, [this](const Req&, Res& res) {
    const double up = std::chrono::duration<double>(Clock::now() - started).count();
    res.set_content(render_metrics(metrics, sched->stats(), up), "text/plain; version=0.0.4");
  }));
  auto models = wrap(Route::models, [this](const Req&, Res& res) {
    const auto& c = model->cfg;
    json m = {{"id", o.alias},
              {"object", "model"},
              {"created", created},
              {"owned_by", "moe"},
              {"meta",
               {{"arch", c.arch}, {"n_vocab", c.n_vocab}, {"n_layer", c.n_layer}, {"n_expert", c.n_expert},
                {"n_ctx_per_slot", o.n_ctx}, {"n_slots", o.n_slots}}}};
    res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
  http.Get("/v1/models", models);
  http.Get("/models", models);
  auto chat = wrap_body(Route::chat, [this](const Req&, Res& res, const std::string& body) {
    generate(parse_chat(parse_body(body), prompt_context()), res);
  });
  http.Post("/v1/chat/completions", chat);
  http.Post("/chat/completions", chat);
  auto completions = wrap_body(Route::completions, [this](const Req&, Res& res, const std::string& body) {
    generate(parse_completion(parse_body(body), prompt_context()), res);
  });
  http.Post("/v1/completions", completions);
  http.Post("/completions", completions);
  http.Post("/tokenize", wrap_body(Route::tokenize, [this](const Req&, Res& res, const std::string& body) {
    const json j = parse_body(body);
    auto it = j.find("content");
    if (it == j.end() || !it->is_string())
      throw ApiError{400, "'content' must be a string", "invalid_request_error", "content", ""};
    auto flag = [&](const char* k, bool def) {
      auto f = j.find(k);
      if (f == j.end() || f->is_null()) return def;
      if (!f->is_boolean()) throw ApiError{400, fmt::format("'{}' must be a boolean", k), "invalid_request_error", k, ""};
      return f->get<bool>();
    };
    const std::string text = it->get<std::string>();
    if (static_cast<int64_t>(text.size()) > static_cast<int64_t>(o.max_body_bytes))
      throw ApiError{400, "'content' is too long", "invalid_request_error", "content", ""};
    std::vector<int32_t> ids;
    try {
      ids = tok->encode(text, flag("add_special", false), flag("parse_special", true));
    } catch (const ApiError&) {
      throw;
    } catch (const std::exception& e) {
      throw ApiError{400, std::string("'content' could not be tokenized: ") + sanitize_utf8(e.what()),
                     "invalid_request_error", "content", ""};
    }
    json out = {{"tokens", ids}};
    if (flag("with_pieces", false)) {
      json pieces = json::array();
      for (int32_t id : ids) {
        const int32_t one[1] = {id};
        pieces.push_back({{"id", id}, {"piece", sanitize_utf8(tok->decode(one))}});
      }
      out["tokens"] = pieces;
    }
    res.set_content(dump(out), "application/json");
  }));
  http.Post("/detokenize", wrap_body(Route::detokenize, [this](const Req&, Res& res, const std::string& body) {
    const json j = parse_body(body);
    auto it = j.find("tokens");
    if (it == j.end() || !it->is_array())
      throw ApiError{400, "'tokens' must be an array of token ids", "invalid_request_error", "tokens", ""};
    std::vector<int32_t> ids;
    for (const auto& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok->n_vocab())
        throw ApiError{400, fmt::format("token ids must be integers in [0, {})", tok->n_vocab()),
                       "invalid_request_error", "tokens", ""};
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    res.set_content(dump({{"content", sanitize_utf8(tok->decode(ids))}}), "application/json");
  }));
  // Any other POST: its body is read (bounded) like the others', then 404.
  http.Post(".*", wrap_body(Route::other, [](const Req& req, Res&, const std::string&) {
    throw ApiError{404, fmt::format("no route for POST {}", sanitize_utf8(req.path)), "invalid_request_error", "",
                   "not_found"};
  }));

  // Runs before any body is read: methods that would carry a body to cpp-httplib's
  // unbounded default reader (PUT, PATCH, DELETE, PRI...) are refused here.
  http.set_pre_routing_handler([this](const Req& req, Res& res) {
    if (req.method != "GET" && req.method != "HEAD" && req.method != "POST" && req.method != "OPTIONS") {
      metrics.count(Route::other);
      res.set_header("Connection", "close");
      send_error(res, {405, fmt::format("method {} is not allowed", sanitize_utf8(req.method)), "invalid_request_error",
                       "", "method_not_allowed"});
      return httplib::Server::HandlerResponse::Handled;
    }
    if (o.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (constant_time_equal(req.get_header_value("Authorization"), "Bearer " + o.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    metrics.count(Route::other);
    send_error(res, {401, "invalid or missing API key (Authorization: Bearer ...)", "invalid_request_error", "",
                     "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([this](const Req& req, Res& res) {
    if (!res.body.empty()) return;  // our own error objects
    ApiError e{res.status, "", "invalid_request_error", "", ""};
    if (res.status == 404) {
      metrics.count(Route::other);
      e.message = fmt::format("no route for {} {}", req.method, sanitize_utf8(req.path));
      e.code = "not_found";
    } else if (res.status == 413) {
      e.message = fmt::format("the request body exceeds the limit of {} bytes", o.max_body_bytes);
      e.code = "payload_too_large";
    } else {
      e.message = fmt::format("HTTP {}", res.status);
      if (res.status >= 500) e.type = "server_error";
    }
    send_error(res, e);
  });
  http.set_exception_handler([this](const Req&, Res& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, {500, sanitize_utf8(what), "server_error", "", ""});
  });

  // Every generation holds a worker while it waits and runs, so the default leaves 16
  // workers beyond slots + queue: /health, /metrics and 429s stay answerable when full.
  const size_t threads = o.http_threads > 0
                             ? static_cast<size_t>(o.http_threads)
                             : std::max<size_t>(64, static_cast<size_t>(o.n_slots) + o.max_queue + 16);
  const size_t pending = o.http_queue;
  http.new_task_queue = [threads, pending] { return new BoundedThreadPool(threads, pending); };
  http.set_payload_max_length(o.max_body_bytes);
  http.set_read_timeout(o.timeout_s, 0);
  http.set_write_timeout(o.timeout_s, 0);
  http.set_keep_alive_timeout(5);
  http.set_keep_alive_max_count(1000);
  http.set_tcp_nodelay(true);
  http.set_socket_options([this](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = sock;
  });
}

Server::Server(const ServerOptions& opts) : impl_(std::make_unique<Impl>(opts)) {}

Server::~Server() {
  shutdown();
}

int Server::bind() {
  Impl& s = *impl_;
  int port = s.o.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.o.host);
    MOE_CHECK(port > 0, "serve: cannot bind {}", s.o.host);
  } else {
    MOE_CHECK(s.http.bind_to_port(s.o.host, port), "serve: cannot bind {}:{} (in use?)", s.o.host, port);
  }
  // cpp-httplib listens with a backlog of 5; a burst of clients needs more.
  if (s.listen_fd >= 0) ::listen(s.listen_fd, 1024);
  return port;
}

void Server::listen() { impl_->http.listen_after_bind(); }

void Server::shutdown() {
  Impl& s = *impl_;
  std::call_once(s.shutdown_once, [&] {
    s.shutting_down = true;  // new generations get 503
    // Stop accepting: accept() fails, cpp-httplib leaves its loop and joins its
    // workers once their responses are complete. Server::stop() is not used: it
    // makes chunked responses end without their final chunk.
    if (s.listen_fd >= 0) ::shutdown(s.listen_fd, SHUT_RDWR);
    const auto grace = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.o.shutdown_grace_s));
    s.sched->drain(Clock::now() + grace);  // in-flight jobs finish, or are cancelled at the deadline
  });
}

int run_server(const ServerOptions& opts) {
  // Signals are taken by sigwait() in this thread; every other thread blocks them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Server server(opts);
  const int port = server.bind();
  MOE_LOG_INFO("serve: listening on http://{}:{} ({} slots, context {} per slot)", opts.host, port, opts.n_slots,
               opts.n_ctx);
  std::fflush(stderr);
  std::atomic<bool> stopping{false};
  std::thread listener([&] {
    server.listen();
    if (!stopping) kill(getpid(), SIGUSR1);  // listening ended by itself
  });
  int sig = 0;
  sigwait(&set, &sig);
  stopping = true;
  MOE_LOG_INFO("serve: {} received; finishing in-flight requests (up to {} s)", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "stop",
               opts.shutdown_grace_s);
  server.shutdown();
  listener.join();
  MOE_LOG_INFO("serve: stopped");
  return 0;
}

}  // namespace moe::server
