// Runtime for a build without MPI: a single process. Started by mpirun with several
// ranks, it refuses with an error that says so, instead of running N independent
// copies that would each print the same answer.
#include "base/error.h"
#include "dist/runtime.h"

namespace moe::dist {

bool built_with_mpi() { return false; }

Runtime::Runtime(int& argc, char**& argv) {
  (void)argc;
  (void)argv;
  const Launch l = detect_launch();
  if (l.size > 1)
    throw_error("this build of moe has no MPI support, so it cannot run as rank {} of {} under "
                "mpirun: install libopenmpi-dev and rebuild (CMake then finds MPI), or run "
                "without mpirun",
                l.rank, l.size);
  detail::set_runtime(this);
}

Runtime::~Runtime() { detail::set_runtime(nullptr); }

int Runtime::fail(int code) { return code; }

}  // namespace moe::dist
