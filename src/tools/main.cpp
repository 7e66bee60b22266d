// The `moe` command line: one program, one subcommand per job. Errors from the
// library (moe::Error) are printed as one line on stderr with exit code 1.
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"moe: run sparse Mixture-of-Experts language models on the CPU", "moe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moe 0.1.0");
  moe::tools::register_run_commands(app);
  moe::tools::register_inspect_command(app);
  moe::tools::register_synth_command(app);
#ifdef MOE_HAVE_TOKENIZE_CMD
  register_tokenize_commands(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
