// Runtime over MPI (built when CMake finds MPI): MPI_Init_thread(FUNNELED: only the
// thread that runs the forward pass calls MPI), the world communicator as an
// ExpertGroup, MPI_Finalize at the end and MPI_Abort after an error.
// The sum is MPI_Reduce to rank 0 followed by MPI_Bcast rather than MPI_Allreduce: the
// MPI standard does not promise every rank the same bits from an Allreduce of floats,
// and ranks whose hidden states differ in the last bit could route differently and
// silently compute different functions. Reduce + Bcast makes rank 0's sum everyone's.
#include <mpi.h>

#include <climits>
#include <cstdio>

#include "base/error.h"
#include "base/log.h"
#include "dist/runtime.h"

namespace moe::dist {
namespace {

class MpiGroup final : public ExpertGroup {
 public:
  MpiGroup(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float* data, int64_t n) override {
    MOE_CHECK(n >= 0 && n <= INT_MAX, "expert group sum: {} floats exceed one MPI message", n);
    const int count = static_cast<int>(n);
    // MPI's default error handler (MPI_ERRORS_ARE_FATAL) ends the job on a failed call.
    if (rank_ == 0) {
      MPI_Reduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, 0, comm_);
    } else {
      MPI_Reduce(data, nullptr, count, MPI_FLOAT, MPI_SUM, 0, comm_);
    }
    MPI_Bcast(data, count, MPI_FLOAT, 0, comm_);
  }

 private:
  MPI_Comm comm_;
  int rank_, size_;
};

}  // namespace

bool built_with_mpi() { return true; }

Runtime::Runtime(int& argc, char**& argv) {
  const Launch l = detect_launch();
  if (l.size > 1) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    mpi_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (rank_ != l.rank || size_ != l.size)
      throw_error("MPI says rank {} of {} but the launcher's environment says rank {} of {}", rank_,
                  size_, l.rank, l.size);
    group_ = std::make_shared<MpiGroup>(MPI_COMM_WORLD, rank_, size_);
    if (rank_ != 0) {
      // One answer per job: rank 0 prints; the others keep stderr for warnings and errors.
      MOE_CHECK(std::freopen("/dev/null", "w", stdout) != nullptr, "rank {}: cannot silence stdout", rank_);
      if (log_level() > LogLevel::warn) set_log_level(LogLevel::warn);
    }
  }
  detail::set_runtime(this);
}

Runtime::~Runtime() {
  detail::set_runtime(nullptr);
  group_.reset();
  if (mpi_) MPI_Finalize();
}

int Runtime::fail(int code) {
  if (mpi_ && size_ > 1) {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  return code;
}

}  // namespace moe::dist
