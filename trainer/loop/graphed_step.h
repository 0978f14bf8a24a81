// --cuda-graph: a whole training step (forward, loss, backward, optimizer update) captured once
// as a CUDA graph and replayed for every later step. At CIFAR sizes a ResNet step is some
// hundreds of short kernels, each costing a host launch; a replay is one launch for all of them.
//
// What a replayed graph needs, and where it comes from:
// - Fixed addresses. The batch is copied into tensors owned here before each replay. Parameters,
//   optimizer state and gradients keep theirs: the gradients are allocated by the captured
//   backward (in the graph's memory pool) and are never reset afterwards, as each replay
//   overwrites them.
// - No host numbers that change between steps. The learning rate is read from a device tensor
//   (trainer/optim/fused_optimizer.h, use_device_lr); Adam's step counts live on the device, and
//   `replayed` does the host half of each replay (their host copies, for checkpoints).
// - No host synchronisation and no collectives inside the step: the trainer allows --cuda-graph
//   at world size one only, without SyncBatchNorm, --accumulate or --skip-nonfinite.
// - The same shapes every step (drop_last, or the sampler's padded last batch).
// - A warm-up: the first `warmup_steps` steps run eagerly on the capture stream, so that cuDNN's
//   autotuning, lazy initialisation and the optimizer state exist before the capture.
//
// Stream contract:
// - run() is called with the training stream current. Warm-up steps and the capture run on a
//   side stream owned here, which first waits on the training stream (an event); the training
//   stream then waits on it (an event). The host never waits, except once, right before the
//   capture (as torch.cuda.graph does: the capture starts from a quiet device).
// - Tensors crossing the streams in a warm-up step (the batch in, the loss out) are recorded as
//   used by the other stream, so the caching allocator does not recycle them early.
// - Replays are launched on the training stream, after the batch copies queued on it; the loss
//   returned is a copy made on it, so the next replay cannot overwrite it.
#pragma once
#include <torch/torch.h>
#include <functional>
#include <memory>

namespace dt::trainer {

struct GraphedStepHooks {
  // Forward, loss, backward and optimizer step on (images, labels); returns the loss, detached.
  std::function<torch::Tensor(const torch::Tensor& images, const torch::Tensor& labels)> step;
  // Sets every gradient to none (before each warm-up step, and before the capture so that the
  // captured backward allocates the gradients in the graph's pool).
  std::function<void()> zero_grad;
  // The host half of a replayed step (the optimizer's bookkeeping).
  std::function<void()> replayed;
};

class GraphedStep {
 public:
  // Throws std::logic_error in a build without CUDA.
  GraphedStep(torch::Device device, GraphedStepHooks hooks, int64_t warmup_steps = 3);
  ~GraphedStep();
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;

  // One training step on this batch; the batch's shapes and dtypes must not change once captured.
  torch::Tensor run(const torch::Tensor& images, const torch::Tensor& labels);
  bool captured() const { return captured_; }
  int64_t replays() const { return replays_; }

 private:
  void capture(const torch::Tensor& images, const torch::Tensor& labels);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  GraphedStepHooks hooks_;
  int64_t warmup_steps_;
  int64_t eager_steps_ = 0;
  int64_t replays_ = 0;
  bool captured_ = false;
};

}  // namespace dt::trainer
