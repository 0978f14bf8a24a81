// Collectives on CPU tensors over MPI's non-blocking operations (MPI_Iallreduce, MPI_Ibcast,
// MPI_Iallgather) on a private duplicate of MPI_COMM_WORLD.
//
// Progress: Open MPI advances non-blocking collectives only inside MPI calls, so test() is
// called from the gradient hooks while backward runs; wait() polls MPI_Test with short sleeps
// (instead of spinning in MPI_Wait) until done or the deadline.
#pragma once
#include <mpi.h>
#include <chrono>
#include "comm/backend.h"

namespace dt::comm {

class MpiBackend : public Backend {
 public:
  MpiBackend(int rank, std::chrono::milliseconds timeout);
  ~MpiBackend() override;
  std::shared_ptr<Work> all_reduce(const torch::Tensor& tensor, ReduceOp op) override;
  std::shared_ptr<Work> broadcast(const torch::Tensor& tensor, int root) override;
  std::shared_ptr<Work> all_gather(const torch::Tensor& output, const torch::Tensor& input) override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_;
  std::chrono::milliseconds timeout_;
  int64_t sequence_ = 0;
};

// The MPI datatype of a tensor's dtype; throws CommError for dtypes MPI cannot reduce.
MPI_Datatype mpi_datatype(const torch::Tensor& tensor);

}  // namespace dt::comm
