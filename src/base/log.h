// Logging to stderr. Level from MOE_LOG (error|warn|info|debug), default info.
#pragma once
#include <fmt/format.h>

#include <cstdio>

namespace moe {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };
LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level > log_level()) return;
  static const char* tags[] = {"error", "warn", "info", "debug"};
  fmt::print(stderr, "moe {}: {}\n", tags[static_cast<int>(level)],
             fmt::format(f, std::forward<Args>(args)...));
}
#define MOE_LOG_INFO(...) ::moe::log(::moe::LogLevel::info, __VA_ARGS__)
#define MOE_LOG_WARN(...) ::moe::log(::moe::LogLevel::warn, __VA_ARGS__)
#define MOE_LOG_DEBUG(...) ::moe::log(::moe::LogLevel::debug, __VA_ARGS__)

}  // namespace moe
