// Learning-rate schedules as pure functions of training progress in epochs (fractional), so that
// a run resumed on another world size (other steps per epoch) continues the same curve.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "trainer/config/config.h"

namespace dt::trainer {

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::Constant;
  double base_lr = 1e-3;
  double total_epochs = 1;
  double warmup_epochs = 0;     // linear warm-up (onecycle: its own ramp, default 30%)
  double step_epochs = 30;      // step: multiply by gamma every step_epochs...
  std::vector<double> milestones;  // ...or, when given, at each of these epochs
  double gamma = 0.1;

  // The rate for the step that starts at `epochs_done` and covers `step_length` epochs.
  // The linear warm-up reads the step's end, so its first step already moves (base_lr x
  // step/warm-up, not 0) and its last step reaches base_lr; everything else reads the start.
  double lr_at(double epochs_done, double step_length = 0) const;
};

}  // namespace dt::trainer
