// --mem BYTES, shared by run, logits, chat and bench: the memory budget under which
// routed experts are streamed from disk (model/expert_cache.h). Parses 123, 512K,
// 12M, 12G, 1.5G (powers of 1024); 0 or absent keeps every weight resident.
#include <cmath>
#include <string>

#include "base/error.h"
#include "tools/commands.h"

namespace moe::tools {

int64_t parse_bytes(const std::string& s) {
  MOE_CHECK(!s.empty(), "--mem: empty size");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw_error("--mem: '{}' is not a size (expected e.g. 512M, 12G or a byte count)", s);
  }
  double mul = 1;
  const std::string suffix = s.substr(used);
  if (suffix == "K" || suffix == "k" || suffix == "KiB") mul = 1024.0;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB") mul = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") mul = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "t" || suffix == "TiB") mul = 1024.0 * 1024 * 1024 * 1024;
  else MOE_CHECK(suffix.empty() || suffix == "B", "--mem: unknown suffix '{}' in '{}' (use K, M, G or T)", suffix, s);
  const double b = v * mul;
  MOE_CHECK(std::isfinite(b) && b >= 0 && b < 9.0e18, "--mem: '{}' is out of range", s);
  return static_cast<int64_t>(b);
}

void add_mem_option(CLI::App* cmd, std::string& mem) {
  cmd->add_option("--mem", mem,
                  "Memory budget (e.g. 12G, suffixes K/M/G): weights other than the routed "
                  "experts stay resident, routed experts are streamed from disk through an "
                  "expert cache that fills the rest of the budget");
}

}  // namespace moe::tools
