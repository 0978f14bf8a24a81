// Who this process is: rank, world size, local rank on its node. Launched by mpirun or srun, it
// initialises MPI (thread level MULTIPLE) and derives the local rank from MPI's shared-memory
// split, not from launcher-specific environment variables. Run without a launcher, it is a world
// of one and never initialises MPI: the single-GPU debugging path touches no communicator.
#pragma once
#include <chrono>
#include <string>
#include <utility>

namespace dt::comm {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  bool mpi = false;  // MPI is initialised (launched under mpirun/srun)
  std::string host;
};

// True when the environment shows an MPI/PMI launcher (Open MPI, PMIx, PMI, Slurm srun).
bool launched_by_mpi();
// How many processes the launcher says it started, and the variable that says so
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, or SLURM_STEP_NUM_TASKS under srun); {"", 0} when none does.
std::pair<std::string, int> launcher_world_size();
// Initialises MPI when launched_by_mpi(); safe to call once per process. Throws LaunchError
// (after finishing MPI) when the world MPI joined is not the size the launcher started.
World init_world(int* argc, char*** argv);
// The lowest rank that reports `failed`, or world.size when none does: a collective over
// MPI_COMM_WORLD (every rank calls it, failed or not) that gives up with a CommError after
// `timeout`. Lets ranks that rejected their own input (flags, environment, data files) end the
// job together, with one message and exit code 2, instead of each printing and aborting.
int first_failing_rank(const World& world, bool failed, std::chrono::milliseconds timeout);
// Ends MPI cleanly (all ranks reached the end).
void finalize_world(const World& world);
// Ends the whole job now with `code`: MPI_Abort under a launcher, exit otherwise.
[[noreturn]] void abort_world(const World& world, int code);

}  // namespace dt::comm
