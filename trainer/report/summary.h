// What a run ends with: its counts, time split, throughput and accuracy (TrainSummary), written
// as summary.json and logged by rank 0.
#pragma once
#include <cstdint>
#include <string>
#include "trainer/config/config.h"
#include "trainer/config/run_context.h"
#include "trainer/report/phase_timer.h"

namespace dt::trainer {

// One evaluation of the test set: mean cross-entropy loss and top-1 accuracy.
struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
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

// summary.json (rank 0): throughput, the time split, accuracy.
void write_summary(const std::string& path, const Config& config, const RunContext& ctx,
                   const TrainSummary& summary);
// The end-of-run summary in the log.
void log_summary(const Config& config, const RunContext& ctx, const TrainSummary& summary);

}  // namespace dt::trainer
