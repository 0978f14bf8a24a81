// Adam and SGD whose step is one fused ATen op over all parameters (at::_fused_adam_,
// at::_fused_sgd_: the kernels behind PyTorch's `fused=True`; Adam adds one foreach op for the
// step counts), instead of LibTorch's loop of several ops per parameter: for resnet20, 2 ops
// instead of 472 (Adam) and 1 instead of 177 (SGD). On a GPU each op is a few multi-tensor
// launches instead of one launch per op and parameter; on one CPU thread Adam's step for resnet14
// drops from about 1.1 to 0.5 ms (BENCHMARKS.md).
//
// They are torch::optim::Adam and torch::optim::SGD in every other respect: the same options,
// the same per-parameter state objects (AdamParamState, SGDParamState), so checkpoints, the
// replica check and `--resume` see no difference. A group they cannot fuse (parameters on
// different devices or of different dtypes, a gradient or state laid out unlike its parameter,
// amsgrad, dampening) takes the base class's step.
//
// Capturable mode (--cuda-graph, trainer/loop/graphed_step.h): a captured step bakes every host
// number into its kernels, so with use_device_lr() the learning rate is read from a float32
// tensor on the parameters' device that set_lr() refills before each replay, and replayed()
// advances the host bookkeeping (Adam's step counts) that a replay skips.
//
// Stream contract: the kernels run on the current stream of the parameters' device, as every
// other op of the step; nothing here synchronises with the host (write_lr is an asynchronous
// fill on the current stream).
#pragma once
#include <torch/torch.h>
#include <unordered_map>

namespace dt::trainer {

class DeviceLr {
 public:
  virtual ~DeviceLr() = default;
  // From now on every step reads its learning rate from a tensor on `device` (set to `lr`).
  void use_device_lr(torch::Device device, double lr);
  bool device_lr() const { return lr_.defined(); }
  // Refills the tensor (no-op without use_device_lr). Never while a graph is being captured.
  void write_lr(double lr);
  // One replay of a captured step() ran on the device: do the host half of that step.
  virtual void replayed() = 0;

 protected:
  torch::Tensor lr_;  // float32, one element; undefined unless use_device_lr
};

class FusedAdam : public torch::optim::Adam, public DeviceLr {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
  void replayed() override;

 private:
  // The kernel reads each parameter's step count from a float32 tensor on its device, while
  // AdamParamState keeps it as a host integer. `held` is the count the tensor holds, so a state
  // replaced from a checkpoint is noticed and its tensor refilled.
  struct StepTensor {
    torch::Tensor value;
    int64_t held = -1;
  };
  std::unordered_map<void*, StepTensor> steps_;
  std::vector<void*> last_stepped_;  // the parameters the last step() updated
};

class FusedSGD : public torch::optim::SGD, public DeviceLr {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
  void replayed() override {}  // momentum buffers live on the device; the host keeps nothing
};

}  // namespace dt::trainer
