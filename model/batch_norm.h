// BatchNorm2d whose batch statistics can be reduced across ranks.
//
// It is torch::nn::BatchNorm2d (same parameters, buffers and Python names: weight, bias,
// running_mean, running_var, num_batches_tracked) with one seam: a StatsSync, set in place after
// construction. With none set, or in eval mode, it is plain BatchNorm. model/ defines the seam
// and knows nothing about how statistics travel; comm/ implements it (SyncBatchNorm).
#pragma once
#include <torch/torch.h>
#include <memory>

namespace dt::model {

// Computes a training-mode batch norm over the global batch of all ranks, updating the running
// statistics identically on every rank.
class StatsSync {
 public:
  virtual ~StatsSync() = default;
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias, torch::Tensor& running_mean,
                                torch::Tensor& running_var, double momentum, double eps) = 0;
};

class BatchNormImpl : public torch::nn::BatchNorm2dImpl {
 public:
  explicit BatchNormImpl(int64_t channels) : torch::nn::BatchNorm2dImpl(channels) {}
  torch::Tensor forward(const torch::Tensor& x);
  void set_sync(std::shared_ptr<StatsSync> sync) { sync_ = std::move(sync); }
  bool synced() const { return sync_ != nullptr; }

 private:
  std::shared_ptr<StatsSync> sync_;
};
TORCH_MODULE(BatchNorm);

// Sets (or clears, with nullptr) the StatsSync of every BatchNorm in `module`.
void set_batch_norm_sync(torch::nn::Module& module, const std::shared_ptr<StatsSync>& sync);

// How many BatchNorms in `module` have a StatsSync set.
int synced_batch_norm_count(torch::nn::Module& module);

}  // namespace dt::model
