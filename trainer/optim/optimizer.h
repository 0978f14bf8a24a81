// Optimizer construction (SGD with momentum/Nesterov/weight decay, or Adam; both with fused
// steps, trainer/optim/fused_optimizer.h) and LR setting.
#pragma once
#include <torch/torch.h>
#include <memory>
#include "trainer/config/config.h"
#include "trainer/optim/fused_optimizer.h"

namespace dt::trainer {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& config,
                                                        const std::vector<torch::Tensor>& params);
// Sets every group's learning rate, and the device copy of it in capturable mode.
void set_lr(torch::optim::Optimizer& optimizer, double lr);
// The capturable side of an optimizer made by make_optimizer (trainer/optim/fused_optimizer.h).
DeviceLr& device_lr(torch::optim::Optimizer& optimizer);

}  // namespace dt::trainer
