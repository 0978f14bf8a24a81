// The Communicator: rank identity plus collectives on tensors, each with an asynchronous form
// whose Work is waited with a deadline. The implementation is chosen per call by the tensor's
// device: NCCL for CUDA tensors, MPI for CPU tensors. A world of one that was not launched by
// MPI completes every collective locally and touches no communication library.
//
// Contract: every collective is called in the same order on every rank.
#pragma once
#include <torch/torch.h>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include "comm/backend.h"
#include "comm/world.h"

namespace dt::comm {

class Communicator {
 public:
  // MPI only, until start_nccl: the ranks can first agree on their configuration over MPI.
  Communicator(const World& world, std::chrono::milliseconds timeout);
  // A communicator of each group of `group_size` consecutive ranks (a collective: every rank
  // constructs one at the same point; group_size divides the world). rank() and world_size()
  // are then within the group. For collectives only (SyncBatchNorm's --sync-bn-group), with
  // their own MPI communicator and, after start_nccl, their own NCCL communicator and stream.
  Communicator(const World& world, std::chrono::milliseconds timeout, int group_size);
  ~Communicator();

  // Sets up NCCL on `cuda_device` for CUDA tensors (a collective: every rank calls it, under
  // --comm-timeout). A no-op in a world without a launcher.
  void start_nccl(int cuda_device);

  int rank() const { return world_.rank; }
  int world_size() const { return world_.size; }
  int local_rank() const { return world_.local_rank; }

  std::shared_ptr<Work> all_reduce_async(const torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  std::shared_ptr<Work> broadcast_async(const torch::Tensor& tensor, int root = 0);
  std::shared_ptr<Work> all_gather_async(const torch::Tensor& output, const torch::Tensor& input);

  void all_reduce(const torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  void broadcast(const torch::Tensor& tensor, int root = 0);
  // Returns [world_size, *input.sizes()].
  torch::Tensor all_gather(const torch::Tensor& input);
  // Every rank has arrived (a small all-reduce, so it obeys the deadline too).
  void barrier();
  // The lowest rank that passes failed = true, or world_size when none does: the one agreement
  // of comm/world.h, under this communicator's deadline (every rank calls it).
  int first_failing_rank(bool failed);

  // Called after each blocking collective with (op: 0 all_reduce, 1 broadcast, 2 all_gather,
  // start, end); for the trace.
  using Observer = std::function<void(int, Clock::time_point, Clock::time_point)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // Collectives issued so far (for benchmarks and tests of the per-step count).
  int64_t collectives_issued() const { return issued_; }

  // Aborts the communication libraries without waiting for peers (failure path).
  void abort();

 private:
  Backend& backend_for(const torch::Tensor& tensor);
  World world_;
  std::chrono::milliseconds timeout_{0};
  std::unique_ptr<Backend> mpi_, nccl_;
  int64_t issued_ = 0;
  Observer observer_;
};

// Throws RankMismatch unless every rank passes the same `value`. The message names `what`, the
// first rank that differs and both values. Used for the config hash and the model structure.
void require_same_on_all_ranks(Communicator& comm, uint64_t value, const std::string& what);

// The same for a text of "key = value" lines (the resolved configuration): compares hashes, and
// where they differ fetches both texts, so the RankMismatch names the first line that differs,
// e.g. "rank 1 has 'lr = 0.002', rank 0 has 'lr = 0.001'".
void require_same_text_on_all_ranks(Communicator& comm, const std::string& text,
                                    const std::string& what);

}  // namespace dt::comm
