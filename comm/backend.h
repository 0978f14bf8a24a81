// One implementation of the collectives for one kind of tensor: MPI for CPU tensors
// (mpi_backend), NCCL for CUDA tensors (nccl_backend). The Communicator picks one per call by
// the tensor's device. Every collective must be issued in the same order on every rank.
#pragma once
#include <torch/torch.h>
#include <memory>
#include "comm/work.h"

namespace dt::comm {

enum class ReduceOp { Sum, Max, Min };

class Backend {
 public:
  virtual ~Backend() = default;
  // In place, over all ranks.
  virtual std::shared_ptr<Work> all_reduce(const torch::Tensor& tensor, ReduceOp op) = 0;
  // In place: every rank ends with root's values.
  virtual std::shared_ptr<Work> broadcast(const torch::Tensor& tensor, int root) = 0;
  // output is [world_size, *input.sizes()]; row r is rank r's input.
  virtual std::shared_ptr<Work> all_gather(const torch::Tensor& output,
                                           const torch::Tensor& input) = 0;
  // Blocking forms: return once the result may be used (see Work::wait). By default the
  // asynchronous form, waited.
  virtual void all_reduce_blocking(const torch::Tensor& tensor, ReduceOp op) {
    all_reduce(tensor, op)->wait();
  }
  virtual void broadcast_blocking(const torch::Tensor& tensor, int root) {
    broadcast(tensor, root)->wait();
  }
  virtual void all_gather_blocking(const torch::Tensor& output, const torch::Tensor& input) {
    all_gather(output, input)->wait();
  }
  // Tears down without waiting for peers (failure path).
  virtual void abort() {}
};

}  // namespace dt::comm
