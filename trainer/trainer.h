// The training loop: one model replica on one device, fed by the sharded loader, evaluated and
// checkpointed by rank 0 each epoch.
#pragma once
#include <torch/torch.h>
#include <memory>
#include <string>
#include "comm/communicator.h"
#include "data/dataset.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/phase_timer.h"

namespace dt::trainer {

// Where this replica runs: rank, world and device, resolved by launch/.
struct RunContext {
  int rank = 0;
  int world_size = 1;
  torch::Device device = torch::kCPU;
  comm::Communicator* comm = nullptr;  // required when world_size > 1
};

struct TrainSummary {
  int64_t steps = 0;
  int64_t epochs_completed = 0;
  double final_train_loss = 0;
  EvalResult last_eval;
  double best_accuracy = 0;
  double train_seconds = 0;  // wall time of run(), evaluation and checkpoints included
  int64_t steps_timed = 0;   // steps after the warm-up
  double images_per_s = 0;   // global, steady state: timed steps over their step time
  PhaseTimer phases;         // per-phase seconds of the timed steps (+ evaluation, checkpoints)
};

// summary.json (rank 0): throughput, the time split, accuracy.
void write_summary(const std::string& path, const Config& config, const RunContext& ctx,
                   const TrainSummary& summary);
// The end-of-run summary in the log.
void log_summary(const Config& config, const RunContext& ctx, const TrainSummary& summary);

class Trainer {
 public:
  Trainer(const Config& config, const RunContext& context, data::Dataset train,
          data::Dataset test);
  ~Trainer();
  TrainSummary run();
  torch::nn::Module& model();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace dt::trainer
