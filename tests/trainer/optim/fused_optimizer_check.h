// Shared by the CPU tests (tests/trainer/test_fused_optimizer.cpp) and the GPU tests
// (tests/gpu/test_cuda.cpp): run dist_train's fused Adam or SGD on fp32 parameters on a device
// and LibTorch's own per-parameter Adam or SGD on fp64 copies on the CPU (the simpler reference)
// with the same fresh gradients, and report how far apart they end.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <algorithm>
#include <string>
#include <vector>
#include "model/resnet.h"
#include "trainer/optim/fused_optimizer.h"
#include "trainer/optim/optimizer.h"

namespace dt::test_util {

struct FusedCheck {
  std::string kind = "adam";  // adam | sgd
  double lr = 1e-2, weight_decay = 1e-2, momentum = 0.9;
  bool nesterov = false;
  int steps = 6;
  int lr_change_at = 3;          // the learning rate drops to a third before this step
  int plain_grad_at = -1;        // at this step the first conv weight's gradient is contiguous
                                 // while the weight is channels_last (a layout the kernel refuses)
  torch::Device device = torch::kCPU;
  bool device_lr = false;        // the capturable mode of --cuda-graph (lr read from a tensor)
};

struct FusedCheckResult {
  double max_param_difference = 0;  // relative to each parameter's scale
  double max_state_difference = 0;  // exp_avg / exp_avg_sq, or the momentum buffer
  int64_t adam_steps = -1;          // AdamParamState::step of the first parameter
};

// resnet20's 59 parameter tensors, conv weights channels_last as the trainer lays them out.
inline std::vector<torch::Tensor> resnet20_shaped_params(torch::ScalarType dtype, torch::Device device) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> out;
  for (const auto& p : model::make_resnet("resnet20")->parameters()) {
    auto t = torch::randn(p.sizes()).to(device, dtype);
    if (t.dim() == 4) t = t.contiguous(at::MemoryFormat::ChannelsLast);
    out.push_back(t.set_requires_grad(true));
  }
  return out;
}

inline double relative_difference(const torch::Tensor& a, const torch::Tensor& ref) {
  const auto r = ref.to(torch::kCPU, torch::kFloat64);
  return (a.to(torch::kCPU, torch::kFloat64) - r).abs().max().item<double>() /
         (1 + r.abs().max().item<double>());
}

inline FusedCheckResult run_fused_check(const FusedCheck& c) {
  auto fused_params = resnet20_shaped_params(torch::kFloat32, c.device);
  auto ref_params = resnet20_shaped_params(torch::kFloat64, torch::kCPU);
  std::unique_ptr<torch::optim::Optimizer> fused, ref;
  if (c.kind == "adam") {
    auto o = torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay);
    fused = std::make_unique<trainer::FusedAdam>(fused_params, o);
    ref = std::make_unique<torch::optim::Adam>(ref_params, o);
  } else {
    auto o = torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(c.weight_decay);
    fused = std::make_unique<trainer::FusedSGD>(fused_params, o);
    ref = std::make_unique<torch::optim::SGD>(ref_params, o);
  }
  if (c.device_lr) trainer::device_lr(*fused).use_device_lr(c.device, c.lr);
  for (int step = 0; step < c.steps; ++step) {
    if (step == c.lr_change_at) {
      trainer::set_lr(*fused, c.lr / 3);
      trainer::set_lr(*ref, c.lr / 3);
    }
    torch::manual_seed(100 + step);
    for (size_t i = 0; i < fused_params.size(); ++i) {
      auto g = torch::randn(fused_params[i].sizes()) * double(i % 7 + 1);
      const auto format = (step == c.plain_grad_at && i == 0) ? at::MemoryFormat::Contiguous
                                                              : fused_params[i].suggest_memory_format();
      fused_params[i].mutable_grad() = g.to(c.device, torch::kFloat32).contiguous(format);
      ref_params[i].mutable_grad() = g.to(torch::kFloat64);
    }
    fused->step();
    ref->step();
  }
  FusedCheckResult r;
  for (size_t i = 0; i < fused_params.size(); ++i) {
    r.max_param_difference = std::max(r.max_param_difference, relative_difference(fused_params[i], ref_params[i]));
    if (c.kind == "sgd" && c.momentum == 0) continue;  // plain SGD keeps no state
    const auto& sf = *fused->state().at(fused_params[i].unsafeGetTensorImpl());
    const auto& sr = *ref->state().at(ref_params[i].unsafeGetTensorImpl());
    if (c.kind == "adam") {
      const auto& a = static_cast<const torch::optim::AdamParamState&>(sf);
      const auto& b = static_cast<const torch::optim::AdamParamState&>(sr);
      if (i == 0) r.adam_steps = a.step();
      if (a.step() != b.step()) r.max_state_difference = 1e300;
      r.max_state_difference = std::max({r.max_state_difference, relative_difference(a.exp_avg(), b.exp_avg()),
                                         relative_difference(a.exp_avg_sq(), b.exp_avg_sq())});
    } else {
      const auto& a = static_cast<const torch::optim::SGDParamState&>(sf);
      const auto& b = static_cast<const torch::optim::SGDParamState&>(sr);
      r.max_state_difference = std::max(r.max_state_difference,
                                        relative_difference(a.momentum_buffer(), b.momentum_buffer()));
    }
  }
  return r;
}

// Runs the check; expects the fused optimizer within `tolerance` of LibTorch's and, for Adam,
// the step count exact.
inline void expect_fused_matches(const FusedCheck& c, double tolerance) {
  const auto r = run_fused_check(c);
  if (c.kind == "adam") {
    EXPECT_EQ(r.adam_steps, c.steps);
  }
  EXPECT_LT(r.max_param_difference, tolerance);
  EXPECT_LT(r.max_state_difference, tolerance);
}

}  // namespace dt::test_util
