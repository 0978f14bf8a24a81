#include "comm/world.h"

#include <mpi.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include "comm/check.h"
#include "comm/errors.h"

namespace dt::comm {

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(var)) return true;
  }
  return false;
}

namespace {
// A launcher's process count from its environment variable, read strictly: a value that is not
// a positive integer is a broken environment to report, not a check to skip.
int process_count(const char* var, const char* value) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || errno != 0 || n < 1 || n > (1 << 24)) {
    throw LaunchError(std::string(var) + "='" + value + "' is not a process count");
  }
  return int(n);
}
}  // namespace

std::pair<std::string, int> launcher_world_size() {
  // mpirun's own variable first: under mpirun inside a Slurm allocation the Slurm step is that
  // of mpirun's daemons (one per node), not of the ranks.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(var)) return {var, process_count(var, v)};
  }
  if (std::getenv("SLURM_PROCID")) {
    if (const char* v = std::getenv("SLURM_STEP_NUM_TASKS")) {
      return {"SLURM_STEP_NUM_TASKS", process_count("SLURM_STEP_NUM_TASKS", v)};
    }
  }
  return {"", 0};
}

World init_world(int* argc, char*** argv) {
  World w;
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  w.host = host;
  if (!launched_by_mpi()) {
    // srun without an MPI plugin starts N independent copies that would each train alone.
    const char* tasks = std::getenv("SLURM_NTASKS");
    if (tasks && std::getenv("SLURM_PROCID") && process_count("SLURM_NTASKS", tasks) > 1) {
      throw LaunchError(std::string("Slurm started ") + tasks +
                        " tasks without MPI (no PMIx/PMI in the environment), so each would train "
                        "alone: launch with srun --mpi=pmix (see launch/recipes/slurm/dist_train.sbatch)");
    }
    set_error_identity(w.rank);  // rank 0 of a world of one, so CUDA errors name it too
    return w;
  }
  // Read before MPI_Init, so that a broken variable is reported as such, not handed to MPI.
  const auto launched = launcher_world_size();
  int provided = 0;
  DT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  w.mpi = true;
  // Errors come back as codes, so DT_MPI_CHECK can report them with the rank and call.
  DT_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  DT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank));
  DT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &w.size));
  set_error_identity(w.rank);
  // A launch error found after MPI_Init: every process meets it alike, so each finishes MPI
  // (no abort banner) and exits 2 with its line.
  auto refuse = [](const std::string& message) {
    MPI_Finalize();
    throw LaunchError(message);
  };
  if (provided < MPI_THREAD_MULTIPLE) {
    // The deadline watchdogs call MPI_Abort while the main thread may be inside MPI.
    refuse(error_prefix(__FILE__, __LINE__) + "the MPI library provides thread level " +
           std::to_string(provided) + ", dist_train needs MPI_THREAD_MULTIPLE");
  }
  // An MPI that did not join the launcher's job (a PMI flavour this build does not speak)
  // starts every process as a world of one: each would train alone and write the same files.
  if (launched.second > 0 && launched.second != w.size) {
    refuse(error_prefix(__FILE__, __LINE__) + "the launcher started " +
           std::to_string(launched.second) + " processes (" + launched.first + "=" +
           std::to_string(launched.second) + ") but MPI_Init joined a world of " +
           std::to_string(w.size) + ": this MPI does not speak the launcher's process manager "
           "(with Slurm, srun --mpi=pmix; see launch/recipes/slurm/dist_train.sbatch)");
  }
  MPI_Comm local;
  DT_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL,
                                   &local));
  DT_MPI_CHECK(MPI_Comm_rank(local, &w.local_rank));
  DT_MPI_CHECK(MPI_Comm_size(local, &w.local_size));
  DT_MPI_CHECK(MPI_Comm_free(&local));
  return w;
}

int first_failing_rank(const World& world, bool failed, std::chrono::milliseconds timeout) {
  if (!world.mpi) return failed ? 0 : world.size;
  // On the heap: if the deadline passes, the request is still in flight and may yet write its
  // result after this function has thrown, so the buffers are left behind (8 bytes), not freed.
  auto* buffers = new int[2]{failed ? world.rank : world.size, world.size};
  MPI_Request request;
  DT_MPI_CHECK(MPI_Iallreduce(&buffers[0], &buffers[1], 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &request));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int done = 0;;) {
    DT_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) {
      const int first = buffers[1];
      delete[] buffers;
      return first;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw CommError(error_prefix(__FILE__, __LINE__) +
                      "the ranks' check of their own input did not complete within " +
                      std::to_string(timeout.count() / 1000.0) + " s: a rank never reached it");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void finalize_world(const World& world) {
  if (world.mpi) MPI_Finalize();
}

void abort_world(const World& world, int code) {
  if (world.mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace dt::comm
