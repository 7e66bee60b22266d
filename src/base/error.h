// Errors a user can act on. The library throws moe::Error (never exit());
// tools catch it at the top and print the one-line message.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// throw_error("{}: tensor '{}' has type {}, expected {}", path, name, found, expected)
template <typename... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

#define MOE_CHECK(cond, ...)                \
  do {                                      \
    if (!(cond)) ::moe::throw_error(__VA_ARGS__); \
  } while (0)

// Debug-only assertion for hot loops.
#ifdef NDEBUG
#define MOE_DASSERT(cond) ((void)0)
#else
#define MOE_DASSERT(cond)                                                        \
  do {                                                                           \
    if (!(cond)) ::moe::throw_error("internal assertion failed: {} ({}:{})", #cond, \
                                    __FILE__, __LINE__);                         \
  } while (0)
#endif

}  // namespace moe
