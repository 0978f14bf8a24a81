// --verify-every N: replicas must not drift apart. Every rank computes, on its own device, one
// checksum per parameter, BatchNorm buffer and optimizer-state tensor (a weighted sum of the
// tensor's bit patterns: no host copy of any tensor), and one all_gather compares them. A
// mismatch names the diverging ranks and the first tensors that differ; rank 0 and each diverging
// rank write their values of those tensors next to the checkpoints
// (divergence_step<S>_rank<R>.pt) for a post-mortem, and the run fails (ReplicaDivergence).
#pragma once
#include <torch/torch.h>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>
#include "comm/communicator.h"

namespace dt::trainer {

struct ReplicaDivergence : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ReplicaCheck {
 public:
  // The tensors to watch, by name (parameters, buffers, "optimizer.<param>.<state>").
  using Named = std::vector<std::pair<std::string, torch::Tensor>>;

  // Throws ReplicaDivergence on a mismatch (after writing the post-mortem files). Returns the
  // number of tensors compared. Every rank must call it at the same step.
  int64_t verify(const Named& tensors, comm::Communicator& comm, int64_t step,
                 const std::string& dump_dir);
  // The per-tensor checksums of this rank (int64 [T], on the tensors' device).
  torch::Tensor checksums(const Named& tensors);

 private:
  std::map<std::pair<int64_t, c10::Device::Type>, torch::Tensor> weights_;  // by numel, device
};

// Parameters, buffers and optimizer state of a model, named for ReplicaCheck. With per-rank
// BatchNorm (--no-sync-bn) the running statistics differ between ranks by design, so buffers
// are watched only when `include_buffers`.
ReplicaCheck::Named watched_tensors(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                    bool include_buffers);

}  // namespace dt::trainer
