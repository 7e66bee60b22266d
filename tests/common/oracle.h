// Independent references (fixtures, npm oracles, PyTorch) that a test needs.
// Elsewhere a missing reference skips the test with a message; under CI=true it
// fails it, so a green CI run proves that every reference ran. Shell tests use
// tests/common/oracle.sh, which follows the same rule.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace moe::test {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

}  // namespace moe::test

// Use at the top of a TEST body: MOE_REQUIRE_ORACLE(fs::exists(p), "../shared/fixtures at " << p);
#define MOE_REQUIRE_ORACLE(present, what)                                                          \
  do {                                                                                             \
    if (!(present)) {                                                                              \
      if (::moe::test::in_ci()) FAIL() << "CI=true: independent reference missing: " << what;      \
      GTEST_SKIP() << "independent reference missing: " << what << " (skipped; fails under CI=true)"; \
    }                                                                                              \
  } while (0)
