#include <spdlog/spdlog.h>
#include <cmath>
#include <sstream>
#include "trainer/metrics.h"
#include "trainer/output_paths.h"
#include "trainer/trainer.h"

namespace dt::trainer {

namespace {
// A run that never evaluated (--eval-every 0, a stop before the first evaluation) has no test
// accuracy: NaN, written as null, not 0. Its best is the resumed checkpoint's, where a stored 0
// means that none was ever measured (a checkpoint does not say more; no evaluation of ten classes
// really scores 0).
double final_accuracy(const TrainSummary& s) {
  return s.last_eval.samples > 0 ? s.last_eval.accuracy : std::nan("");
}
double best_accuracy(const TrainSummary& s) {
  return s.last_eval.samples > 0 || s.best_accuracy > 0 ? s.best_accuracy : std::nan("");
}
}  // namespace

void write_summary(const std::string& path, const Config& c, const RunContext& ctx,
                   const TrainSummary& s) {
  const double step_s = s.phases.step_seconds();
  const auto num = [](double v) { return json_number(v); };  // null for NaN/Inf, never "nan"
  std::ostringstream o;
  o << "{\"world_size\": " << ctx.world_size << ", \"batch_per_rank\": " << c.batch_size
    << ", \"accumulate\": " << c.accumulate << ", \"steps\": " << s.steps
    << ", \"steps_timed\": " << s.steps_timed << ", \"images_per_s\": " << num(s.images_per_s)
    << ", \"images_per_s_per_rank\": " << num(s.images_per_s / ctx.world_size)
    << ", \"collectives_per_step\": " << num(s.collectives_per_step)
    << ", \"cuda_graph_replays\": " << s.graph_replays
    << ", \"step_time_ms\": " << num(s.steps_timed ? 1000 * step_s / s.steps_timed : 0.0)
    << ", \"seconds\": {";
  for (size_t p = 0; p < size_t(Phase::Count); ++p) {
    o << (p ? ", " : "") << "\"" << phase_name(Phase(p)) << "\": " << num(s.phases.seconds(Phase(p)));
  }
  o << "}, \"wall_seconds\": " << num(s.train_seconds)
    << ", \"final_test_accuracy\": " << num(final_accuracy(s))
    << ", \"best_test_accuracy\": " << num(best_accuracy(s))
    << ", \"final_train_loss\": " << num(s.final_train_loss) << "}\n";
  write_output_file(path, o.str(), path);
}

void log_summary(const Config& c, const RunContext& ctx, const TrainSummary& s) {
  const double step_s = s.phases.step_seconds();
  auto pct = [&](Phase p) { return step_s > 0 ? 100 * s.phases.seconds(p) / step_s : 0.0; };
  spdlog::info("summary: {} steps ({} timed), {:.0f} images/s global, {:.0f} per rank, "
               "{:.1f} ms/step", s.steps, s.steps_timed, s.images_per_s,
               s.images_per_s / ctx.world_size, s.steps_timed ? 1000 * step_s / s.steps_timed : 0.0);
  // On CUDA the split is the host's view (trainer/phase_timer.h): the GPU's own time shows in
  // the phase that waits for it, and in "waiting for the device".
  if (c.cuda_graph) {  // the "forward" phase times the whole replayed step's launch
    spdlog::info("summary: step time split: data {:.1f}%, CUDA graph launch (forward, backward, "
                 "update) {:.1f}%, waiting for the device {:.1f}%, {} replays; evaluation {:.1f} s, "
                 "checkpoints {:.1f} s",
                 pct(Phase::Data), pct(Phase::Forward), pct(Phase::DeviceWait), s.graph_replays,
                 s.phases.seconds(Phase::Evaluation), s.phases.seconds(Phase::Checkpoint));
  } else {
    spdlog::info("summary: step time split: data {:.1f}%, forward {:.1f}%, backward {:.1f}%, "
                 "exposed communication {:.1f}%, optimizer {:.1f}%, waiting for the device "
                 "{:.1f}%; evaluation {:.1f} s, checkpoints {:.1f} s, replica checks {:.3f} s",
                 pct(Phase::Data), pct(Phase::Forward), pct(Phase::Backward),
                 pct(Phase::Communication), pct(Phase::Optimizer), pct(Phase::DeviceWait),
                 s.phases.seconds(Phase::Evaluation), s.phases.seconds(Phase::Checkpoint),
                 s.phases.seconds(Phase::Verify));
  }
  const auto percent = [](double v) { return std::isnan(v) ? std::string("none") : fmt::format("{:.2f}%", 100 * v); };
  spdlog::info("summary: best test accuracy {}, final {}; checkpoint {}/last.pt",
               percent(best_accuracy(s)), percent(final_accuracy(s)), c.checkpoint_dir);
}

}  // namespace dt::trainer
