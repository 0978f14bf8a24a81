#include "trainer/report/gradient_timeline.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace dt::trainer {

GradientTimeline::GradientTimeline(const std::vector<torch::Tensor>& parameters, Trace& trace,
                                   const int64_t* step) {
  for (size_t k = 0; k < parameters.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(parameters[k]);
    if (!acc) continue;  // frozen: never has a gradient
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [&trace, step, k](const torch::autograd::variable_list& outputs,
                          const torch::autograd::variable_list&) {
          const auto now = Trace::Clock::now();
          trace.add(TraceKind::GradientReady, int64_t(k), *step, now, now);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
}

GradientTimeline::~GradientTimeline() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
}

}  // namespace dt::trainer
