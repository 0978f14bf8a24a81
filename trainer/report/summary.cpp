#include <spdlog/spdlog.h>
#include <cmath>
#include "trainer/report/json_writer.h"
#include "trainer/report/output_paths.h"
#include "trainer/report/summary.h"

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
  Json j;
  j["world_size"] = ctx.world_size;
  j["batch_per_rank"] = c.batch_size;
  j["accumulate"] = c.accumulate;
  j["steps"] = s.steps;
  j["steps_timed"] = s.steps_timed;
  j["images_per_s"] = json_number(s.images_per_s);
  j["images_per_s_per_rank"] = json_number(s.images_per_s / ctx.world_size);
  j["collectives_per_step"] = json_number(s.collectives_per_step);
  j["cuda_graph_replays"] = s.graph_replays;
  j["step_time_ms"] = json_number(s.steps_timed ? 1000 * step_s / s.steps_timed : 0.0);
  Json& seconds = j["seconds"] = Json::object();
  for (size_t p = 0; p < size_t(Phase::Count); ++p) {
    seconds[phase_name(Phase(p))] = json_number(s.phases.seconds(Phase(p)));
  }
  j["wall_seconds"] = json_number(s.train_seconds);
  j["final_test_accuracy"] = json_number(final_accuracy(s));
  j["best_test_accuracy"] = json_number(best_accuracy(s));
  j["final_train_loss"] = json_number(s.final_train_loss);
  write_output_file(path, dump_line(j) + "\n", path);
}

void log_summary(const Config& c, const RunContext& ctx, const TrainSummary& s) {
  const double step_s = s.phases.step_seconds();
  auto pct = [&](Phase p) { return step_s > 0 ? 100 * s.phases.seconds(p) / step_s : 0.0; };
  spdlog::info("summary: {} steps ({} timed), {:.0f} images/s global, {:.0f} per rank, "
               "{:.1f} ms/step", s.steps, s.steps_timed, s.images_per_s,
               s.images_per_s / ctx.world_size, s.steps_timed ? 1000 * step_s / s.steps_timed : 0.0);
  // On CUDA the split is the host's view (trainer/report/phase_timer.h): the GPU's own time shows in
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
