#include "trainer/optim/fused_optimizer.h"

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

// The base classes' per-parameter loop reads the learning rate on the host: in capturable mode
// that would freeze it into a captured graph.
void require_fusable(const DeviceLr& d, const char* name) {
  TORCH_CHECK(!d.device_lr(), name, " with a device learning rate (--cuda-graph) needs every group "
              "fusable: parameters and state of one device and dtype, laid out alike, no amsgrad "
              "or dampening");
}

}  // namespace

void DeviceLr::use_device_lr(torch::Device device, double lr) {
  // float32: the CUDA kernels read the tensor as float.
  lr_ = torch::full({}, lr, torch::TensorOptions().dtype(torch::kFloat32).device(device));
}

void DeviceLr::write_lr(double lr) {
  if (lr_.defined()) lr_.fill_(lr);
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  std::vector<std::vector<torch::Tensor>> groups;
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    auto params = fusable_params(group, state_);
    if (o.amsgrad() || !params) {
      require_fusable(*this, "Adam");
      return torch::optim::Adam::step(closure);
    }
    groups.push_back(std::move(*params));
  }
  last_stepped_.clear();
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
      last_stepped_.push_back(p.unsafeGetTensorImpl());
    }
    torch::_foreach_add_(steps, 1);
    const auto [beta1, beta2] = o.betas();
    if (device_lr()) {
      at::_fused_adam_(params, grads_of(params), exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{},
                       steps, lr_, beta1, beta2, o.weight_decay(), o.eps(), /*amsgrad=*/false,
                       /*maximize=*/false);
    } else {
      at::_fused_adam_(params, grads_of(params), exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{},
                       steps, o.lr(), beta1, beta2, o.weight_decay(), o.eps(), /*amsgrad=*/false,
                       /*maximize=*/false);
    }
  }
  return loss;
}

// The replay ran _foreach_add_ on the device step tensors; the host counts (what checkpoints and
// bias correction on resume read) follow, and stay equal to what the tensors hold.
void FusedAdam::replayed() {
  for (void* key : last_stepped_) {
    auto& s = static_cast<torch::optim::AdamParamState&>(*state_.at(key));
    s.step(s.step() + 1);
    steps_.at(key).held = s.step();
  }
}

torch::Tensor FusedSGD::step(LossClosure closure) {
  std::vector<std::vector<torch::Tensor>> groups;
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    auto params = fusable_params(group, state_);
    if (o.dampening() != 0 || !params) {
      require_fusable(*this, "SGD");
      return torch::optim::SGD::step(closure);
    }
    groups.push_back(std::move(*params));
  }
  torch::NoGradGuard no_grad;
  const auto loss = run_closure(closure);
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(param_groups_[g].options());
    const auto& params = groups[g];
    if (params.empty()) continue;
    auto fused_sgd = [&](const std::vector<torch::Tensor>& ps, const std::vector<torch::Tensor>& buffers,
                         bool is_first) {
      if (device_lr()) {
        at::_fused_sgd_(ps, grads_of(ps), buffers, o.weight_decay(), o.momentum(), lr_,
                        /*dampening=*/0.0, o.nesterov(), /*maximize=*/false, is_first);
      } else {
        at::_fused_sgd_(ps, grads_of(ps), buffers, o.weight_decay(), o.momentum(), o.lr(),
                        /*dampening=*/0.0, o.nesterov(), /*maximize=*/false, is_first);
      }
    };
    if (o.momentum() == 0) {
      fused_sgd(params, /*buffers=*/{}, /*is_first=*/false);
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
      fused_sgd(ps, is_first ? first_buffers : rest_buffers, is_first);
    }
  }
  return loss;
}

}  // namespace dt::trainer
