#include "trainer/optim/optimizer.h"

namespace dt::trainer {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& c,
                                                        const std::vector<torch::Tensor>& params) {
  if (c.optimizer == OptimizerKind::Sgd) {
    return std::make_unique<FusedSGD>(
        params, torch::optim::SGDOptions(c.lr)
                    .momentum(c.momentum)
                    .nesterov(c.nesterov)
                    .weight_decay(c.weight_decay));
  }
  return std::make_unique<FusedAdam>(
      params, torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
  if (auto* d = dynamic_cast<DeviceLr*>(&optimizer)) d->write_lr(lr);
}

DeviceLr& device_lr(torch::optim::Optimizer& optimizer) {
  auto* d = dynamic_cast<DeviceLr*>(&optimizer);
  TORCH_CHECK(d, "device_lr: not an optimizer of make_optimizer");
  return *d;
}

}  // namespace dt::trainer
