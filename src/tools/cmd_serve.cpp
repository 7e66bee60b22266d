// `moe serve`: the OpenAI-compatible HTTP server with continuous batching
// (src/server). Options mirror llama-server's where they overlap (-np, -c, -b,
// --api-key, --host, --port). The API key may also come from --api-key-file or
// the MOE_API_KEY environment variable (neither shows in process listings).
#ifdef MOE_HAVE_SERVER
#include <cstdlib>
#include <memory>
#include <string>

#include "server/auth.h"
#include "server/server.h"
#include "tools/commands.h"

namespace moe::tools {

static void register_serve_command(CLI::App& app) {
  auto o = std::make_shared<server::ServerOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  cmd->add_option("--alias", o->alias, "Model id in responses (default: the file name)");
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--np,--parallel", o->n_slots, "Slots: sequences decoded together (also -np N)")
      ->capture_default_str();
  // CLI11 has no multi-letter short options: "-np 8" arrives as -n "p" plus an extra "8".
  auto np_short = std::make_shared<std::string>();
  cmd->add_option("-n", *np_short, "")->group("");
  cmd->allow_extras();
  cmd->add_option("-c,--ctx-size", o->n_ctx, "Context per slot (tokens)")->capture_default_str();
  cmd->add_option("-b,--batch-size", o->n_batch, "Tokens per forward pass")->capture_default_str();
  cmd->add_option("-t,--threads", o->n_threads, "Compute threads (0: all cores)")->capture_default_str();
  // The parsed string lives as long as the option: its callback holds it.
  auto kv_type = std::make_shared<std::string>("f32");
  cmd->add_option("--kv-type", *kv_type, "KV cache type: f32, or f16 (half the memory)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str()
      ->each([o, kv_type](const std::string& v) { o->kv_f16 = v == "f16"; });
  cmd->add_option("--threads-http", o->http_threads, "HTTP worker threads (0: max(64, np + max-queue + 16))");
  cmd->add_option("--max-queue", o->max_queue,
                  "Generation requests that may wait for a slot; more get 429 with Retry-After (0: unbounded)")
      ->capture_default_str();
  cmd->add_option("--http-queue", o->http_queue,
                  "Accepted connections that may wait for an HTTP worker; more wait in the listen backlog")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' (except /health)");
  auto key_file = std::make_shared<std::string>();
  cmd->add_option("--api-key-file", *key_file, "Read the API key from the first line of FILE (else: MOE_API_KEY)");
  cmd->add_option("--max-body", o->max_body_bytes, "Largest request body (bytes)")->capture_default_str();
  cmd->add_option("--max-prompt-tokens", o->max_prompt_tokens, "Longest prompt (0: the context)")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Largest max_tokens a request may ask for")->capture_default_str();
  cmd->add_option("--default-max-tokens", o->default_max_tokens,
                  "max_tokens when a request gives none (0: what the context leaves, capped by --max-tokens)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "Read/write timeout of a connection (s)")->capture_default_str();
  cmd->add_option("--shutdown-grace", o->shutdown_grace_s, "Seconds in-flight requests get at shutdown")
      ->capture_default_str();
  cmd->callback([o, np_short, cmd, key_file] {
    auto extras = cmd->remaining();
    if (!np_short->empty()) {
      if ((*np_short)[0] != 'p') throw CLI::ValidationError("-n", "unknown option -" + *np_short + " (did you mean -np N?)");
      std::string v = np_short->substr(1);
      if (v.empty() && !extras.empty()) {
        v = extras.front();
        extras.erase(extras.begin());
      }
      try {
        size_t used = 0;
        o->n_slots = std::stoi(v, &used);
        if (used != v.size()) throw std::invalid_argument(v);
      } catch (const std::exception&) {
        throw CLI::ValidationError("-np", "expects an integer");
      }
    }
    if (!extras.empty()) throw CLI::ExtrasError(extras);
    o->api_key = server::resolve_api_key(o->api_key, *key_file, std::getenv("MOE_API_KEY"));
    const int rc = server::run_server(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

MOE_REGISTER_COMMAND(serve, register_serve_command);

}  // namespace moe::tools
#endif  // MOE_HAVE_SERVER
