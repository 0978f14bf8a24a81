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
#include "comm/communicator.h"
#include "data/dataset.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/phase_timer.h"

namespace dt::trainer {

// Where this replica runs: rank, world and device, resolved by launch/app/.
struct RunContext {
  int rank = 0;
  int world_size = 1;
  torch::Device device = torch::kCPU;
  comm::Communicator* comm = nullptr;  // required when world_size > 1
  // SyncBatchNorm's own communicator, over its group of ranks (--sync-bn-group), with its own
  // MPI communicator and NCCL stream, so that its collectives never queue behind gradient
  // buckets; null: SyncBatchNorm uses `comm`.
  comm::Communicator* sync_bn_comm = nullptr;
  // True once the process was asked to stop (SIGTERM/SIGUSR1); polled at step boundaries.
  std::function<bool()> stop_requested;
};

struct TrainSummary {
  int64_t steps = 0;             // optimizer steps completed in total (resumed ones included)
  int64_t epochs_completed = 0;
  bool stopped_early = false;    // a stop request ended the run at a step boundary
  int64_t skipped_steps = 0;     // updates skipped for a non-finite loss (--skip-nonfinite)
  double final_train_loss = 0;
  EvalResult last_eval;
  double best_accuracy = 0;
  double train_seconds = 0;      // wall time of run(), evaluation and checkpoints included
  int64_t steps_timed = 0;       // steps after the warm-up
  double images_per_s = 0;       // global, steady state: timed steps over their step time
  PhaseTimer phases;             // per-phase seconds of the timed steps (+ evaluation, checkpoints)
  double collectives_per_step = 0;
  int64_t graph_replays = 0;     // --cuda-graph: steps run as a replay of the captured graph
};

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

// summary.json (rank 0): throughput, the time split, accuracy.
void write_summary(const std::string& path, const Config& config, const RunContext& ctx,
                   const TrainSummary& summary);
// The end-of-run summary in the log.
void log_summary(const Config& config, const RunContext& ctx, const TrainSummary& summary);

}  // namespace dt::trainer
