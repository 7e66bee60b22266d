// Subcommands of the `moe` program. Each cmd_*.cpp registers its own subcommands
// with a static MOE_REGISTER_COMMAND(fn) where fn(CLI::App&) adds them; main()
// calls every registered function in name order, so adding a command needs no
// edit elsewhere.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace moe::tools {

using RegisterFn = void (*)(CLI::App&);
struct CommandRegistrar {
  CommandRegistrar(const char* name, RegisterFn fn);
};
void register_all_commands(CLI::App& app);

}  // namespace moe::tools

namespace moe {
struct Model;
struct SamplerParams;
namespace tools {
// --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed
void add_sampler_options(CLI::App* cmd, SamplerParams& sp);
// Loads a GGUF model, reading large files in with a progress line on stderr.
// stream_experts: leave the routed experts on disk for an expert cache.
std::shared_ptr<Model> load_with_progress(const std::string& path, bool stream_experts = false);
// --mem BYTES (mem_option.cpp): the option, and its value in bytes (0 when empty).
void add_mem_option(CLI::App* cmd, std::string& mem);
int64_t parse_bytes(const std::string& s);
inline int64_t mem_bytes(const std::string& mem) { return mem.empty() ? 0 : parse_bytes(mem); }
}  // namespace tools

}  // namespace moe::tools

#define MOE_REGISTER_COMMAND(name, fn) \
  static ::moe::tools::CommandRegistrar moe_registrar_##name(#name, fn)
