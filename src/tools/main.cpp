// The `moe` command line: one program, one subcommand per job (registered by the
// cmd_*.cpp files). Errors from the library (moe::Error) are printed as one line
// on stderr with exit code 1. Under `mpirun -np N` (N > 1) a dist::Runtime makes this
// process one rank of an expert-parallel job: an error on any rank ends the whole job.
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>

#include "base/error.h"
#include "dist/runtime.h"
#include "tools/commands.h"

namespace moe::tools {
namespace {
std::map<std::string, RegisterFn>& registry() {
  static std::map<std::string, RegisterFn> r;
  return r;
}
}  // namespace
CommandRegistrar::CommandRegistrar(const char* name, RegisterFn fn) { registry()[name] = fn; }
void register_all_commands(CLI::App& app) {
  for (const auto& [name, fn] : registry()) fn(app);
}
}  // namespace moe::tools

#ifdef MOE_HAVE_TOKENIZE_CMD
void register_tokenize_commands(CLI::App& app);  // tokenize_cmd.cpp
MOE_REGISTER_COMMAND(tokenize, register_tokenize_commands);
#endif

int main(int argc, char** argv) {
  std::unique_ptr<moe::dist::Runtime> ranks;
  try {
    ranks = std::make_unique<moe::dist::Runtime>(argc, argv);
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe: error: %s\n", e.what());
    return 1;
  }
  CLI::App app{"moe: run sparse Mixture-of-Experts language models on the CPU", "moe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moe 0.1.0");
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("moe: error: ") + e.what() + " (see --help)\n";
  });
  moe::tools::register_all_commands(app);
  try {
    for (int i = 1; i < argc; ++i)
      if (argv[i][0] != '-') {  // the subcommand
        ranks->check_command(argv[i]);
        break;
      }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe: error: %s\n", e.what());
    return ranks->fail(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe: internal error: %s\n", e.what());
    return ranks->fail(2);
  }
  return 0;
}
