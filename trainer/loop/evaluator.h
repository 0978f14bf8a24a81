// Evaluation of the replica on the test set, as the run asks for it: by rank 0 alone while the
// others wait (--eval rank0), or a shard on each rank with the sums reduced (--eval distributed),
// with or without flip test-time augmentation. Owns the device-resident test set.
//
// Contract: evaluate() is a collective: every rank calls it at the same point, and every rank
// gets the same result back (the broadcast or all-reduce obeys --comm-timeout).
#pragma once
#include <torch/torch.h>
#include <functional>
#include <memory>
#include "data/dataset.h"
#include "data/loader.h"
#include "model/network.h"
#include "trainer/config/config.h"
#include "trainer/loop/evaluate.h"
#include "trainer/loop/trainer.h"

namespace dt::trainer {

class Evaluator {
 public:
  using Forward = std::function<torch::Tensor(const torch::Tensor&)>;
  // An empty `test` set (a rank that reads none) evaluates nothing and takes part in the
  // collective only.
  // `statistics_shared`: every rank holds the same BatchNorm running statistics.
  Evaluator(const Config& config, const RunContext& ctx, const data::Dataset& test,
            torch::ScalarType dtype, bool channels_last, bool statistics_shared);

  bool has_test_set() const { return set_ != nullptr; }
  // The test loss and accuracy of `net`, whose logits `forward` computes.
  EvalResult evaluate(model::Network& net, const Forward& forward);

 private:
  bool distributed() const { return ctx_.comm && ctx_.world_size > 1; }
  RunContext ctx_;
  EvalMode mode_;
  bool flip_;
  int64_t batch_;
  bool statistics_shared_;
  std::unique_ptr<data::EvalSet> set_;
};

}  // namespace dt::trainer
