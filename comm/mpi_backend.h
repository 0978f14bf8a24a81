// Collectives on CPU tensors over MPI's non-blocking operations (MPI_Iallreduce, MPI_Ibcast,
// MPI_Iallgather) on a private duplicate of MPI_COMM_WORLD, or of one group of its ranks.
//
// Progress: Open MPI advances non-blocking collectives only inside MPI calls, so test() is
// called from the gradient hooks while backward runs; wait() polls MPI_Test with short sleeps
// (instead of spinning in MPI_Wait) until done or the deadline.
//
// The blocking forms (SyncBatchNorm statistics, per-step agreement, results) use MPI's blocking
// collectives, which complete without depending on the peers' later progress calls (a
// non-blocking one can return on one rank while another still needs that rank to call into MPI
// again). Their deadline is kept by a watchdog thread that ends the job (MPI_Abort) naming the
// rank and the collective.
#pragma once
#include <mpi.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include "comm/backend.h"

namespace dt::comm {

class MpiBackend : public Backend {
 public:
  // `group` < 0: every rank; else the ranks that pass the same `group` (MPI_Comm_split, a
  // collective over MPI_COMM_WORLD), in world-rank order. `rank` is the world rank, for messages.
  MpiBackend(int rank, std::chrono::milliseconds timeout, int group = -1);
  ~MpiBackend() override;
  std::shared_ptr<Work> all_reduce(const torch::Tensor& tensor, ReduceOp op) override;
  std::shared_ptr<Work> broadcast(const torch::Tensor& tensor, int root) override;
  std::shared_ptr<Work> all_gather(const torch::Tensor& output, const torch::Tensor& input) override;
  void all_reduce_blocking(const torch::Tensor& tensor, ReduceOp op) override;
  void broadcast_blocking(const torch::Tensor& tensor, int root) override;
  void all_gather_blocking(const torch::Tensor& output, const torch::Tensor& input) override;

  // Arms the watchdog for one blocking call (RAII): past --comm-timeout it ends the job naming
  // `what`. Also for blocking set-up calls of other libraries (ncclCommInitRank).
  class Deadline {
   public:
    Deadline(MpiBackend& b, std::string what);
    ~Deadline();

   private:
    MpiBackend& b_;
  };

 private:
  void watchdog();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string blocking_what_;
  Clock::time_point blocking_deadline_{};
  bool blocking_ = false, stop_ = false;
  std::thread watchdog_;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_;
  std::chrono::milliseconds timeout_;
  int64_t sequence_ = 0;
};

// The MPI datatype of a tensor's dtype; throws CommError for dtypes MPI cannot reduce.
MPI_Datatype mpi_datatype(const torch::Tensor& tensor);

}  // namespace dt::comm
