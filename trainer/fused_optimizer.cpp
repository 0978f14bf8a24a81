#include "trainer/fused_optimizer.h"

#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_sgd.h>

namespace dt::trainer {
namespace {

using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

// True when `t` can be walked element for element alongside `p`: same dtype, device and memory
// layout. The CPU kernels index raw storage over numel without looking at strides, so a
// contiguous gradient of a channels_last weight would be applied to the wrong elements.
bool same_layout(const torch::Tensor& t, const torch::Tensor& p) {
  return t.scalar_type() == p.scalar_type() && t.device() == p.device() && !t.is_sparse() &&
         t.is_non_overlapping_and_dense() && t.strides() == p.strides();
}

// The parameters of a group that have a gradient; empty optional when the group cannot go
// through one fused kernel (one device, one floating dtype, dense gradients and state laid out
// as their parameters).
std::optional<std::vector<torch::Tensor>> fusable_params(const torch::optim::OptimizerParamGroup& group,
                                                         const StateMap& state) {
  std::vector<torch::Tensor> out;
  for (const auto& p : group.params()) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    if (!at::isFloatingType(p.scalar_type()) || !p.is_non_overlapping_and_dense() ||
        !same_layout(g, p)) {
      return std::nullopt;
    }
    auto it = state.find(p.unsafeGetTensorImpl());
    if (it != state.end()) {
      if (auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(it->second.get())) {
        if (!same_layout(adam->exp_avg(), p) || !same_layout(adam->exp_avg_sq(), p)) return std::nullopt;
      } else if (auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(it->second.get())) {
        if (!same_layout(sgd->momentum_buffer(), p)) return std::nullopt;
      }
    }
    if (!out.empty() && (p.device() != out[0].device() || p.scalar_type() != out[0].scalar_type())) {
      return std::nullopt;
    }
    out.push_back(p);
  }
  return out;
}

std::vector<torch::Tensor> grads_of(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params) grads.push_back(p.grad());
  return grads;
}

// The loss closure runs with gradients on, before the update, as in LibTorch's optimizers.
torch::Tensor run_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

}  // namespace

torch::Tensor FusedAdam::step(LossClosure closure) {
  std::vector<std::vector<torch::Tensor>> groups;
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    auto params = fusable_params(group, state_);
    if (o.amsgrad() || !params) return torch::optim::Adam::step(closure);
    groups.push_back(std::move(*params));
  }
  torch::NoGradGuard no_grad;
  const auto loss = run_closure(closure);
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(param_groups_[g].options());
    const auto& params = groups[g];
    if (params.empty()) continue;
    std::vector<torch::Tensor> exp_avgs, exp_avg_sqs, steps;
    for (const auto& p : params) {
      auto& slot = state_[p.unsafeGetTensorImpl()];
      if (!slot) {  // as torch::optim::Adam creates it
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        slot = std::move(s);
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*slot);
      auto& t = steps_[p.unsafeGetTensorImpl()];
      if (!t.value.defined() || t.value.device() != p.device()) {
        t.value = torch::zeros({}, p.options().dtype(torch::kFloat32));
        t.held = 0;
      }
      if (t.held != s.step()) t.value.fill_(double(s.step()));
      s.step(s.step() + 1);
      t.held = s.step();
      exp_avgs.push_back(s.exp_avg());
      exp_avg_sqs.push_back(s.exp_avg_sq());
      steps.push_back(t.value);
    }
    torch::_foreach_add_(steps, 1);
    at::_fused_adam_(params, grads_of(params), exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps,
                     o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.weight_decay(),
                     o.eps(), /*amsgrad=*/false, /*maximize=*/false);
  }
  return loss;
}

torch::Tensor FusedSGD::step(LossClosure closure) {
  std::vector<std::vector<torch::Tensor>> groups;
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    auto params = fusable_params(group, state_);
    if (o.dampening() != 0 || !params) return torch::optim::SGD::step(closure);
    groups.push_back(std::move(*params));
  }
  torch::NoGradGuard no_grad;
  const auto loss = run_closure(closure);
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(param_groups_[g].options());
    const auto& params = groups[g];
    if (params.empty()) continue;
    if (o.momentum() == 0) {
      at::_fused_sgd_(params, grads_of(params), /*momentum_buffer_list=*/{}, o.weight_decay(), 0.0,
                      o.lr(), 0.0, o.nesterov(), /*maximize=*/false, /*is_first_step=*/false);
      continue;
    }
    // A parameter's first step starts its momentum buffer from the gradient (the kernel's
    // is_first_step), so parameters with and without a buffer go in separate calls.
    std::vector<torch::Tensor> first, first_buffers, rest, rest_buffers;
    for (const auto& p : params) {
      auto& slot = state_[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto s = std::make_unique<torch::optim::SGDParamState>();
        s->momentum_buffer(torch::empty_like(p, at::MemoryFormat::Preserve));
        first_buffers.push_back(s->momentum_buffer());
        first.push_back(p);
        slot = std::move(s);
      } else {
        rest_buffers.push_back(static_cast<torch::optim::SGDParamState&>(*slot).momentum_buffer());
        rest.push_back(p);
      }
    }
    for (bool is_first : {true, false}) {
      const auto& ps = is_first ? first : rest;
      if (ps.empty()) continue;
      at::_fused_sgd_(ps, grads_of(ps), is_first ? first_buffers : rest_buffers, o.weight_decay(),
                      o.momentum(), o.lr(), /*dampening=*/0.0, o.nesterov(), /*maximize=*/false,
                      is_first);
    }
  }
  return loss;
}

}  // namespace dt::trainer
