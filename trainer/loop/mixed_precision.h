// --precision bf16: automatic mixed precision for the forward pass.
//
// Inside a MixedPrecision scope, LibTorch's autocast runs the ops on its lower-precision list
// (convolutions, linear layers) in bf16 on `device` and everything else as before. What stays
// fp32: the master weights (autocast casts a bf16 copy per forward, cached for that forward),
// their gradients (the cast is differentiable), the optimizer state, the gradient all-reduce, and
// the BatchNorm statistics (BatchNorm and SyncBatchNorm accumulate in fp32 whatever the activation
// dtype). The loss is computed in fp32 from the logits after the scope ends. Backward runs outside
// the scope, as the autograd graph already holds the casts.
#pragma once
#include <torch/torch.h>

namespace dt::trainer {

class MixedPrecision {
 public:
  // A scope that does nothing when !enabled (fp32 and fp64 runs).
  MixedPrecision(torch::Device device, bool enabled);
  ~MixedPrecision();
  MixedPrecision(const MixedPrecision&) = delete;
  MixedPrecision& operator=(const MixedPrecision&) = delete;

 private:
  bool enabled_;
  c10::DeviceType type_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace dt::trainer
