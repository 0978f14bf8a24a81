#include "trainer/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace dt::trainer {

double LrSchedule::lr_at(double epoch, double step_length) const {
  const double pi = 3.14159265358979323846;
  const double total = std::max(total_epochs, 1e-9);
  // onecycle ramps up its own way; every other schedule starts with the linear warm-up.
  if (kind != ScheduleKind::OneCycle && warmup_epochs > 0 && epoch < warmup_epochs) {
    return base_lr * std::min(epoch + step_length, warmup_epochs) / warmup_epochs;
  }
  if (kind == ScheduleKind::Step) {
    // The 1e-9 makes a drop land on its epoch despite the rounding of samples / epoch size.
    const double drops =
        milestones.empty()
            ? std::floor(epoch / step_epochs + 1e-9)
            : double(std::upper_bound(milestones.begin(), milestones.end(), epoch + 1e-9) -
                     milestones.begin());
    return base_lr * std::pow(gamma, drops);
  }
  if (kind == ScheduleKind::Cosine || kind == ScheduleKind::Linear) {
    const double t = std::clamp((epoch - warmup_epochs) / std::max(total - warmup_epochs, 1e-9), 0.0, 1.0);
    return kind == ScheduleKind::Cosine ? base_lr * 0.5 * (1 + std::cos(pi * t)) : base_lr * (1 - t);
  }
  if (kind == ScheduleKind::OneCycle) {
    // torch.optim.lr_scheduler.OneCycleLR's shape: from lr/25 up to lr, then cosine to lr/25e4.
    const double warm = warmup_epochs > 0 ? warmup_epochs : 0.3 * total;
    const double lo = base_lr / 25, end = lo / 1e4;
    if (epoch < warm) return lo + (base_lr - lo) * (0.5 - 0.5 * std::cos(pi * epoch / warm));
    const double t = std::clamp((epoch - warm) / std::max(total - warm, 1e-9), 0.0, 1.0);
    return end + (base_lr - end) * 0.5 * (1 + std::cos(pi * t));
  }
  return base_lr;
}

}  // namespace dt::trainer
