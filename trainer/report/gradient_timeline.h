// --trace: the moment each parameter's gradient is complete in backward, from a hook on its
// gradient accumulator (where the Reducer learns it too), recorded as GradientReady events.
// They are the per-layer profile of backward: when each gradient bucket can launch, and which
// BatchNorm layers (their weight's gradient) come before it. Hooks run on the thread that runs
// backward; the timeline only appends to the trace, which that thread also owns.
#pragma once
#include <torch/torch.h>
#include <memory>
#include <vector>
#include "trainer/report/trace.h"

namespace torch::autograd {
class Node;
}

namespace dt::trainer {

class GradientTimeline {
 public:
  // `step` labels the events (read when each hook runs).
  GradientTimeline(const std::vector<torch::Tensor>& parameters, Trace& trace, const int64_t* step);
  ~GradientTimeline();  // removes the hooks
  GradientTimeline(const GradientTimeline&) = delete;
  GradientTimeline& operator=(const GradientTimeline&) = delete;

 private:
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<size_t> hook_keys_;
};

}  // namespace dt::trainer
