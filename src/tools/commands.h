// Subcommands of the `moe` program; each file registers its own on the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>

namespace moe::tools {
void register_run_commands(CLI::App& app);      // run, logits (cmd_run.cpp)
void register_inspect_command(CLI::App& app);   // inspect (cmd_inspect.cpp)
void register_synth_command(CLI::App& app);     // synth (cmd_synth.cpp)
}  // namespace moe::tools

#ifdef MOE_HAVE_TOKENIZE_CMD
void register_tokenize_commands(CLI::App& app);  // tokenize, detokenize (tokenize_cmd.cpp)
#endif
