// `moe serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the continuous-
// batching scheduler. Server loads the model, binds, serves until shutdown();
// run_server() adds the process side: SIGINT/SIGTERM trigger a graceful shutdown
// (stop accepting, let in-flight requests finish within a grace period, exit 0).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/api.h"

namespace moe::server {

struct ServerOptions {
  std::string model_path;
  std::string alias;              // model id in responses (default: file name)
  std::string host = "127.0.0.1";
  int port = 8080;                // 0: any free port
  int n_slots = 1;                // -np: sequences decoded together
  int64_t n_ctx = 4096;           // context per slot
  int64_t n_batch = 512;          // tokens per forward pass
  bool kv_f16 = false;            // KV cache in IEEE half (half the memory) instead of f32
  int n_threads = 0;              // compute threads (0: all)
  int http_threads = 0;           // 0: max(64, n_slots + max_queue + 16)
  size_t max_queue = 64;          // generation requests waiting for a slot (more: 429); 0: unbounded
  size_t http_queue = 1024;       // accepted connections waiting for an HTTP worker (more: accept waits)
  std::string api_key;            // empty: no authentication (see resolve_api_key)
  size_t max_body_bytes = 8u << 20;
  int64_t max_prompt_tokens = 0;  // 0: the context
  int64_t max_tokens = 4096;      // cap on a request's max_tokens
  int64_t default_max_tokens = 0; // 0: what the context leaves, capped by max_tokens
  int timeout_s = 30;             // read/write timeout of a connection
  double shutdown_grace_s = 10;   // in-flight requests get this long at shutdown
};

class Server {
 public:
  explicit Server(const ServerOptions& opts);
  ~Server();
  int bind();       // binds host:port; returns the port (throws moe::Error)
  void listen();    // serves until shutdown(); call after bind()
  void shutdown();  // graceful; thread-safe; idempotent
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs the server until SIGINT/SIGTERM; returns the process exit code.
int run_server(const ServerOptions& opts);

}  // namespace moe::server
