#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace dt::trainer {

double LrSchedule::lr_at(int64_t step) const {
  const double pi = 3.14159265358979323846;
  const double epoch = double(step) / double(std::max<int64_t>(steps_per_epoch, 1));
  const double total = double(std::max<int64_t>(total_steps, 1));
  if (kind == "step") return base_lr * std::pow(gamma, std::floor(epoch / step_epochs));
  if (kind == "cosine") {
    const double warm = warmup_epochs * steps_per_epoch;
    if (step < warm) return base_lr * (step + 1) / warm;
    const double t = std::min(1.0, (step - warm) / std::max(1.0, total - warm));
    return base_lr * 0.5 * (1 + std::cos(pi * t));
  }
  if (kind == "onecycle") {
    // torch.optim.lr_scheduler.OneCycleLR's shape: from lr/25 up to lr, then cosine to lr/25e4.
    const double warm = std::max(1.0, (warmup_epochs > 0 ? warmup_epochs * steps_per_epoch
                                                         : 0.3 * total));
    const double lo = base_lr / 25, end = lo / 1e4;
    if (step < warm) return lo + (base_lr - lo) * (0.5 - 0.5 * std::cos(pi * step / warm));
    const double t = std::min(1.0, (step - warm) / std::max(1.0, total - warm));
    return end + (base_lr - end) * 0.5 * (1 + std::cos(pi * t));
  }
  return base_lr;
}

}  // namespace dt::trainer
