// The process's place in an `mpirun` job, for main() and the commands. Runtime starts
// MPI when the launcher's environment says this process is one of several ranks, and
// ends it at destruction; a build without MPI refuses such a launch with a clear error.
// Commands ask world_expert_group() for the ExpertGroup to give their Context
// (model/expert_group.h) and is_root() for whether they write outputs. Ranks other
// than 0 have stdout sent to /dev/null and log warnings and errors only, so a job
// prints one answer. Layer: tools -> dist -> model.
#pragma once
#include <memory>
#include <string>

#include "model/expert_group.h"

namespace moe::dist {

// What the launcher's environment says (OpenMPI: OMPI_COMM_WORLD_{RANK,SIZE};
// PMIx: PMIX_RANK; MPICH/Hydra: PMI_{RANK,SIZE}). size 1 and launched false otherwise.
struct Launch {
  bool launched = false;
  int rank = 0;
  int size = 1;
};
Launch detect_launch();
bool built_with_mpi();

class Runtime {
 public:
  // MPI_Init when launched with more than one rank. Throws moe::Error when the build
  // has no MPI and the launch has several ranks, or when MPI's view disagrees with
  // the launcher's.
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Ends the program after an error: with several ranks the whole job (MPI_Abort), so
  // no rank waits forever in a collective for one that has gone; otherwise returns code.
  int fail(int code);
  // Throws moe::Error when `command` cannot run over several ranks yet.
  void check_command(const std::string& command) const;

 private:
  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
  std::shared_ptr<ExpertGroup> group_;
  friend std::shared_ptr<ExpertGroup> world_expert_group();
};

// The expert group of all ranks of the job; nullptr when there is one rank.
std::shared_ptr<ExpertGroup> world_expert_group();
// True on rank 0 (and when not under mpirun): the rank that writes outputs.
bool is_root();
int world_size();

namespace detail {
void set_runtime(Runtime* r);  // by Runtime's constructor and destructor only
}

}  // namespace moe::dist
