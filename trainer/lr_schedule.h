// Learning-rate schedules as pure functions of training progress in epochs (fractional), so that
// a run resumed on another world size (other steps per epoch) continues the same curve.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt::trainer {

struct LrSchedule {
  std::string kind = "constant";  // constant | step | cosine | linear | onecycle
  double base_lr = 1e-3;
  double total_epochs = 1;
  double warmup_epochs = 0;     // linear warm-up from 0 (onecycle: its own ramp, default 30%)
  double step_epochs = 30;      // step: multiply by gamma every step_epochs...
  std::vector<double> milestones;  // ...or, when given, at each of these epochs
  double gamma = 0.1;

  double lr_at(double epochs_done) const;
};

}  // namespace dt::trainer
