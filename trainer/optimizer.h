// Optimizer construction (SGD with momentum/Nesterov/weight decay, or Adam; both with fused
// steps, trainer/fused_optimizer.h) and LR setting.
#pragma once
#include <torch/torch.h>
#include <memory>
#include "trainer/config.h"

namespace dt::trainer {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& config,
                                                        const std::vector<torch::Tensor>& params);
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace dt::trainer
