// Learning-rate schedules as pure functions of the global step.
#pragma once
#include <cstdint>
#include <string>

namespace dt::trainer {

struct LrSchedule {
  std::string kind = "constant";  // constant | step | cosine | onecycle
  double base_lr = 1e-3;
  int64_t steps_per_epoch = 1;
  int64_t total_steps = 1;
  double warmup_epochs = 0;     // linear warm-up (cosine, onecycle; onecycle defaults to 30%)
  double step_epochs = 30;      // step: multiply by gamma every step_epochs
  double gamma = 0.1;

  double lr_at(int64_t step) const;
};

}  // namespace dt::trainer
