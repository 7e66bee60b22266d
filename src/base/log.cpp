// Log level, read once from the MOE_LOG environment variable.
#include "base/log.h"

#include <cstdlib>
#include <cstring>

namespace moe {
namespace {
LogLevel initial_level() {
  const char* env = std::getenv("MOE_LOG");
  if (!env) return LogLevel::info;
  if (!std::strcmp(env, "error")) return LogLevel::error;
  if (!std::strcmp(env, "warn")) return LogLevel::warn;
  if (!std::strcmp(env, "debug")) return LogLevel::debug;
  return LogLevel::info;
}
LogLevel g_level = initial_level();
}  // namespace
LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }
}  // namespace moe
