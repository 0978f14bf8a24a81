// SyncBatchNorm: batch-norm statistics of the global batch across all ranks, as a custom
// autograd function plugged into model::BatchNorm through its StatsSync seam (in place: the
// modules keep their parameters, buffers and names, so checkpoints work either way).
//
// Forward: each rank computes per-channel (mean, M2, count) of its own samples; one all_gather
// brings every rank's triple; they are combined with Chan's parallel formula (stable, weighted by
// counts, so uneven batches, a rank with one sample or none are exact). Running statistics use
// the unbiased variance and are updated identically on every rank.
// Backward: one all_reduce of per-channel sum(dy) and sum(dy * (x - mean)); grad_input is exact
// for the global batch; grad_weight and grad_bias are this rank's share, summed across ranks by
// the gradient Reducer like any other parameter gradient.
// Two collectives per BatchNorm layer per training step. On CUDA, no host synchronisation: the
// collectives are stream-ordered and the global-count check is a device-side assertion. On CPU
// the per-channel arithmetic (combining the ranks' statistics, dx's coefficients) runs in plain
// loops in double, and dx is one pass: tensor ops on a few hundred numbers cost more than the work.
#pragma once
#include "comm/communicator.h"
#include "model/batch_norm.h"

namespace dt::comm {

class SyncBatchNorm : public model::StatsSync {
 public:
  explicit SyncBatchNorm(Communicator& comm) : comm_(comm) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias, torch::Tensor& running_mean,
                        torch::Tensor& running_var, double momentum, double eps) override;

 private:
  Communicator& comm_;
};

}  // namespace dt::comm
