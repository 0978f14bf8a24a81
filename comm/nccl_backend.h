// Collectives on CUDA tensors over NCCL, bootstrapped by MPI (rank 0 creates the ncclUniqueId
// and broadcasts it over the MPI backend). Both that broadcast and ncclCommInitRank run under the
// MPI backend's deadline, so a rank that never joins ends the job instead of hanging it. (A
// non-blocking NCCL communicator would allow polling instead, but then every later NCCL call may
// return ncclInProgress too.)
//
// Stream contract: each collective runs on this backend's dedicated communication stream. Before
// it, the comm stream waits on an event recorded on the caller's current (compute) stream, so it
// sees the caller's writes; after it, an event is recorded on the comm stream, and Work::wait()
// makes the caller's current stream wait on that event. Tensors are recorded on the comm stream
// for the caching allocator. No host synchronisation anywhere on this path.
//
// Deadlines: a watchdog thread polls each pending collective's completion event and
// ncclCommGetAsyncError. A collective past --comm-timeout, or an asynchronous NCCL error, aborts
// the communicator and the job (MPI_Abort) with a message naming the host, rank and collective.
#pragma once
#if DT_HAVE_CUDA
#include <nccl.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <c10/cuda/CUDAStream.h>
#include "comm/backend.h"
#include "comm/mpi_backend.h"

namespace dt::comm {

class NcclBackend : public Backend {
 public:
  // `bootstrap`: the MPI backend of the same world, for the ncclUniqueId and the set-up deadline.
  NcclBackend(MpiBackend& bootstrap, int rank, int world_size, int device_index,
              std::chrono::milliseconds timeout);
  ~NcclBackend() override;
  std::shared_ptr<Work> all_reduce(const torch::Tensor& tensor, ReduceOp op) override;
  std::shared_ptr<Work> broadcast(const torch::Tensor& tensor, int root) override;
  std::shared_ptr<Work> all_gather(const torch::Tensor& output, const torch::Tensor& input) override;
  void abort() override;

 private:
  struct Pending {
    std::shared_ptr<Work> work;
    Clock::time_point deadline;
  };
  // Orders the comm stream after the caller's current stream (an event, no host wait).
  void enter(const std::vector<torch::Tensor>& tensors);
  // Records completion on the comm stream and hands the work to the watchdog.
  std::shared_ptr<Work> finish(std::string what, std::vector<torch::Tensor> tensors);
  void watchdog();
  void watchdog_loop();
  void abort_locked();  // abort() with mutex_ held (the watchdog's own path)

  ncclComm_t comm_ = nullptr;
  int rank_, device_;
  std::chrono::milliseconds timeout_;
  c10::cuda::CUDAStream stream_;
  int64_t sequence_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  std::atomic<bool> stop_{false}, aborted_{false};
  std::thread watchdog_;
};

}  // namespace dt::comm
#endif
