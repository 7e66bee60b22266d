// Launch detection (no MPI needed): the environment variables that mpirun-style
// launchers set for every process they start. Values are validated: a malformed
// variable is an error naming it, never a silent single-process run.
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "dist/runtime.h"

namespace moe::dist {
namespace {

// Reads an integer environment variable in [lo, hi]; -1 when unset.
int env_int(const char* name, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v) return -1;
  const std::string s(v);
  size_t used = 0;
  long long x = -1;
  try {
    x = std::stoll(s, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || x < lo || x > hi)
    throw_error("environment variable {}='{}' is not an integer in [{}, {}]", name, s, lo, hi);
  return static_cast<int>(x);
}

}  // namespace

Launch detect_launch() {
  constexpr int kMaxRanks = 1 << 20;
  Launch l;
  int size = env_int("OMPI_COMM_WORLD_SIZE", 1, kMaxRanks);
  int rank = env_int("OMPI_COMM_WORLD_RANK", 0, kMaxRanks - 1);
  if (size < 0) {
    size = env_int("PMI_SIZE", 1, kMaxRanks);
    rank = env_int("PMI_RANK", 0, kMaxRanks - 1);
  }
  if (rank < 0) rank = env_int("PMIX_RANK", 0, kMaxRanks - 1);
  if (size < 0 && rank < 0) return l;
  l.launched = true;
  l.size = size < 0 ? 1 : size;
  l.rank = rank < 0 ? 0 : rank;
  MOE_CHECK(l.rank < l.size, "launcher environment: rank {} is not below the job size {}", l.rank, l.size);
  return l;
}

namespace {
Runtime* g_runtime = nullptr;
}

void detail::set_runtime(Runtime* r) { g_runtime = r; }
std::shared_ptr<ExpertGroup> world_expert_group() { return g_runtime ? g_runtime->group_ : nullptr; }

bool is_root() { return !g_runtime || g_runtime->rank() == 0; }
int world_size() { return g_runtime ? g_runtime->size() : 1; }

void Runtime::check_command(const std::string& command) const {
  if (size_ == 1) return;
  // Commands whose contexts take the expert group and whose outputs rank 0 writes.
  for (const char* ok : {"run", "logits", "inspect"})
    if (command == ok) return;
  throw_error("`moe {}` does not run over several MPI ranks yet (this job has {}): expert "
              "parallelism covers `moe run`, `moe logits` and `moe inspect`; run `moe {}` "
              "without mpirun",
              command, size_, command);
}

}  // namespace moe::dist
