// The training loop: one model replica on one device, fed by the sharded loader. Every rank runs
// the same sequence of collectives: gradient buckets and SyncBatchNorm inside each step, one
// small agreement (stop requested? non-finite loss?) after each step, the loss mean at log
// points, and the evaluation results at epoch ends. Rank 0 evaluates (or every rank a shard, with
// --eval distributed), writes logs and checkpoints; checkpoints are resumed exactly.
#pragma once
#include <torch/torch.h>
#include <functional>
#include <memory>
#include <string>
#include "data/dataset.h"
#include "trainer/config/config.h"
#include "trainer/config/run_context.h"
#include "trainer/report/summary.h"

namespace dt::trainer {

class Trainer {
 public:
  // Builds the replica; with --resume, restores model, optimizer, RNG and data position.
  Trainer(const Config& config, const RunContext& context, data::Dataset train,
          data::Dataset test);
  ~Trainer();
  // Trains to --epochs (or --max-steps, or a stop request); with --eval-only, evaluates the
  // loaded checkpoint once instead.
  TrainSummary run();
  torch::nn::Module& model();

 private:
  struct State;  // the replica (trainer_state.h)
  class Loop;    // one run of the training loop over it (training_loop.cpp)
  std::unique_ptr<State> s_;
};

}  // namespace dt::trainer
