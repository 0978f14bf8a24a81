// Test-set evaluation: mean cross-entropy loss and top-1 accuracy.
#pragma once
#include <torch/torch.h>
#include "data/loader.h"
#include "trainer/report/summary.h"

namespace dt::trainer {

// Evaluates rows [begin, end) of `set` in eval mode (restores the previous mode). The loss and
// correct count are summed, so shards evaluated on several ranks can be combined exactly. With
// `flip`, an image's logits are the mean of its own and its horizontal mirror's (test-time
// augmentation: the training flips make both views in-distribution, and they err differently).
struct EvalSums {
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t samples = 0;
  EvalResult result() const;
};
EvalSums evaluate_sums(torch::nn::Module& model,
                       const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                       const data::EvalSet& set, int64_t begin, int64_t end, int64_t batch,
                       bool flip);

}  // namespace dt::trainer
