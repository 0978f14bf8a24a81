// Where this replica runs: rank, world and device, and the communicators it talks through,
// resolved by launch/app/ and read by the loop and by what the run reports.
#pragma once
#include <torch/torch.h>
#include <functional>

namespace dt::comm {
class Communicator;  // comm/communicator.h: the loop talks through it; this room only names it
}  // namespace dt::comm

namespace dt::trainer {

struct RunContext {
  int rank = 0;
  int world_size = 1;
  torch::Device device = torch::kCPU;
  comm::Communicator* comm = nullptr;  // required when world_size > 1
  // SyncBatchNorm's own communicator, over its group of ranks (--sync-bn-group), with its own
  // MPI communicator and NCCL stream, so that its collectives never queue behind gradient
  // buckets; null: SyncBatchNorm uses `comm`.
  comm::Communicator* sync_bn_comm = nullptr;
  // True once the process was asked to stop (SIGTERM/SIGUSR1); polled at step boundaries.
  std::function<bool()> stop_requested;
};

}  // namespace dt::trainer
