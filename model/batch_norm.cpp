#include "model/batch_norm.h"

namespace dt::model {

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
  if (!sync_ || !is_training()) return torch::nn::BatchNorm2dImpl::forward(x);
  num_batches_tracked += 1;  // kept in step with plain BN so checkpoints match either way
  return sync_->forward(x, weight, bias, running_mean, running_var,
                        options.momentum().value_or(0.1), options.eps());
}

void set_batch_norm_sync(torch::nn::Module& module, const std::shared_ptr<StatsSync>& sync) {
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* bn = dynamic_cast<BatchNormImpl*>(m.get())) bn->set_sync(sync);
  }
}

int synced_batch_norm_count(torch::nn::Module& module) {
  int count = 0;
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* bn = dynamic_cast<BatchNormImpl*>(m.get())) count += bn->synced();
  }
  return count;
}

}  // namespace dt::model
