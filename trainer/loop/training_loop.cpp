// Trainer::run(): the training loop, epoch by epoch and step by step, with the epoch-end
// evaluation, logs and checkpoints (the replica itself is built in trainer.cpp). The loop reads as
// one named call per phase (Loop::run); a feature goes in the phase it belongs to:
//   train_step()     one optimizer step: data, forward, backward, gradient reduction, the ranks'
//                    agreement on stopping and on a non-finite loss, the update
//   end_log_window() the losses of the last steps: checked, averaged over ranks, logged
//   after_step()     replica check and mid-epoch checkpoint, when due
//   finish_epoch()   evaluation, epoch metrics, the epoch's checkpoint files
//   finish_run()     the last files on disk, the trace, the summary
//
// Stream contract (CUDA): every step's work is queued on the current stream of this rank's GPU:
// the loader's batch arrives through an event from its side stream (data/side_stream.h), the
// gradient buckets leave and return through events on the NCCL stream (comm/nccl_backend.h), and
// a --cuda-graph step is replayed on the current stream (graphed_step.h). The host waits for the
// GPU only where it reads results anyway, each wait timed as "device_wait": once per log window
// (the losses), at the end of an epoch (metrics, evaluation, checkpoint), before a replica check
// or a mid-epoch checkpoint, at the start of the timed steps, and, with --skip-nonfinite, per
// step (the loss decides the update). Never elsewhere per step.
#include <cmath>
#include "comm/errors.h"
#include "model/conv3x3.h"
#include "trainer/loop/errors.h"
#include "trainer/report/gradient_timeline.h"
#include "trainer/report/metrics.h"
#include "trainer/optim/optimizer.h"
#include "trainer/report/progress.h"
#include "trainer/report/tensorboard.h"
#include "trainer/report/trace.h"
#include "trainer/report/trace_facts.h"
#include "trainer/loop/trainer_state.h"

namespace dt::trainer {
namespace {
constexpr int64_t kWarmupSteps = 5;  // steps of each run left out of the steady-state figures
}  // namespace

class Trainer::Loop {
 public:
  explicit Loop(State& s);
  ~Loop() { close_trace(); }
  TrainSummary run();

 private:
  // What one optimizer step left behind.
  struct StepResult {
    torch::Tensor loss;  // on the device, as a 0-dim tensor (undefined when skipped)
    bool skipped = false;  // a non-finite loss on some rank (--skip-nonfinite): no update
  };

  int64_t steps_in(int64_t epoch) const { return s_.loader->steps_in_epoch(epoch) / c_.accumulate; }
  int64_t last_step() const;
  TrainSummary nothing_to_train() const;
  void log_start() const;
  void open_outputs();
  void open_trace();
  void close_trace();
  void start_timing_if_due();
  StepResult train_step();
  torch::Tensor forward_backward();
  void count_step(const StepResult& step);
  bool log_due(bool mid_checkpoint) const;
  void end_log_window();
  void after_step(bool mid_checkpoint);
  void finish_epoch(bool completed);
  TrainSummary finish_run();
  void wait_for_device();

  State& s_;
  const Config& c_;
  const bool rank0_;
  const int64_t global_batch_;
  int64_t max_step_ = 0;
  int64_t warmup_ = 0;
  torch::nn::functional::CrossEntropyFuncOptions ce_options_;

  std::unique_ptr<MetricsLog> metrics_;      // rank 0
  std::unique_ptr<TensorBoardWriter> tb_;    // rank 0
  Trace trace_;
  int64_t trace_step_ = 0;
  std::unique_ptr<GradientTimeline> gradient_timeline_;  // --trace
  PhaseTimer timer_;
  std::unique_ptr<ProgressBar> progress_;
  TrainSummary summary_;
  Clock::time_point run_start_, window_start_, epoch_start_;
  int64_t steps_this_run_ = 0, collectives_at_timing_start_ = 0;
  bool stop_ = false;  // a stop request (SIGTERM/SIGUSR1), agreed by every rank
  double lr_ = 0, last_rate_ = 0, last_loss_ = 0;

  // The log window: per-step losses stay on the device until logged (no sync per step).
  std::vector<torch::Tensor> window_losses_;
  int64_t window_images_ = 0;
  // The epoch so far.
  torch::Tensor epoch_loss_;
  int64_t epoch_images_ = 0, epoch_steps_ = 0;
};

Trainer::Loop::Loop(State& s)
    : s_(s),
      c_(s.config),
      rank0_(s.rank0()),
      global_batch_(s.loader->sampler().global_batch() * s.config.accumulate),
      ce_options_(torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
          s.config.label_smoothing)),
      trace_(!s.config.trace.empty()) {
  lr_ = c_.lr;
  max_step_ = last_step();
}

// The last step: the rest of the current epoch, then whole epochs (at this world size and batch,
// which may differ from those of a resumed checkpoint), capped by --max-steps.
int64_t Trainer::Loop::last_step() const {
  const auto& start = s_.position;
  int64_t last = start.epoch() >= c_.epochs
                     ? start.step()
                     : start.step() + steps_in(start.epoch()) +
                           (c_.epochs - start.epoch() - 1) *
                               (s_.loader->sampler().steps_per_epoch() / c_.accumulate);
  if (c_.max_steps > 0) last = std::min(last, c_.max_steps);
  return last;
}

TrainSummary Trainer::run() {
  if (s_->config.eval_only) return s_->evaluate_checkpoint();
  return Loop(*s_).run();
}

TrainSummary Trainer::Loop::run() {
  if (max_step_ <= s_.position.step()) return nothing_to_train();
  log_start();
  open_outputs();
  s_.net->train();
  run_start_ = window_start_ = epoch_start_ = Clock::now();
  // Steady-state figures leave out the first steps of this run (allocator, thread pools).
  warmup_ = std::max<int64_t>(0, std::min(kWarmupSteps, max_step_ - s_.position.step() - 1));
  auto& pos = s_.position;
  while (!stop_ && pos.epoch() < c_.epochs && pos.step() < max_step_) {
    pos.begin_epoch(*s_.loader);
    const int64_t first = pos.samples_done() / global_batch_;  // resumed part-way: steps done
    const int64_t steps = first + steps_in(pos.epoch());
    int64_t k = first;
    for (; k < steps && pos.step() < max_step_ && !stop_; ++k) {
      start_timing_if_due();
      count_step(train_step());
      const bool mid_checkpoint = c_.checkpoint_every_steps > 0 &&
                                  pos.step() % c_.checkpoint_every_steps == 0 && k + 1 < steps;
      if (log_due(mid_checkpoint) || k + 1 == steps) end_log_window();
      if (rank0_) progress_->update(steps_this_run_, last_loss_, last_rate_);
      after_step(mid_checkpoint);
    }
    finish_epoch(/*completed=*/k == steps);
  }
  return finish_run();
}

// A requeued job whose checkpoint already holds every epoch (or --max-steps) asked for: say so and
// leave the run's files as they are, rather than log an empty run over them.
TrainSummary Trainer::Loop::nothing_to_train() const {
  const auto& start = s_.position;
  if (rank0_) {
    spdlog::info("nothing to train: {} has {} epochs and {} steps done{}, and this run asks for "
                 "--epochs {}{}", s_.persistence->resumed_from(), start.epoch(), start.step(),
                 start.samples_done() > 0 ? " (and " + std::to_string(start.samples_done()) +
                                                " samples of epoch " + std::to_string(start.epoch() + 1) + ")"
                                          : "",
                 c_.epochs, c_.max_steps > 0 ? " --max-steps " + std::to_string(c_.max_steps) : "");
  }
  TrainSummary done;
  done.steps = start.step();
  done.epochs_completed = start.epoch();
  done.best_accuracy = start.best_accuracy();
  return done;
}

void Trainer::Loop::log_start() const {
  if (!rank0_) return;
  const int synced = model::synced_batch_norm_count(*s_.net);
  // Where model/conv3x3.h runs its stride-1 layers as Winograd (the stem and strided ones never).
  const bool winograd = s_.ctx.device.is_cpu() && c_.precision == Precision::Fp32 &&
                        s_.channels_last &&
                        model::conv3x3_algorithm() == model::Conv3x3Algorithm::Auto &&
                        model::winograd_available();
  spdlog::info("model {} ({} parameters) on {}, {}, {} channels_last, {}{}", c_.model,
               model::parameter_count(*s_.net), s_.ctx.device.str(), name_of(c_.precision),
               s_.channels_last ? "with" : "without",
               synced ? "SyncBatchNorm (" + std::to_string(synced) + " layers)"
                      : std::string("per-rank BatchNorm"),
               winograd ? ", Winograd 3x3 convolutions" : "");
  spdlog::info("data: {} train / {} test images from {}; augment {}", s_.train.size(),
               s_.test.size(), s_.train.source, name_of(c_.augment));
  // What an epoch really trains on: whole steps of whole accumulations (micro-batches left over
  // after the last full accumulation are not trained, padded ones included).
  const int64_t dataset_size = s_.train.size();
  const int64_t trained = steps_in(1 << 30) * global_batch_;
  const int64_t unused = dataset_size - trained;
  spdlog::info("batch {} per rank x {} ranks{} = {} global; {} steps per epoch; tail: {}",
               c_.batch_size, s_.ctx.world_size,
               c_.accumulate > 1 ? " x " + std::to_string(c_.accumulate) + " micro-batches" : "",
               global_batch_, steps_in(1 << 30),
               unused > 0   ? std::to_string(unused) + " of " + std::to_string(dataset_size) +
                                  " samples not trained per epoch (" +
                                  (c_.drop_last ? "drop_last" : "after padding") +
                                  (c_.accumulate > 1 ? ", and micro-batches short of an accumulation)"
                                                     : ")")
               : unused < 0 ? "padded (" + std::to_string(-unused) + " samples repeated per epoch)"
                            : "none (the global batch divides the training set)");
}

void Trainer::Loop::open_outputs() {
  if (rank0_) {
    metrics_ = std::make_unique<MetricsLog>(
        (std::filesystem::path(c_.log_dir) / "metrics.jsonl").string());
    tb_ = std::make_unique<TensorBoardWriter>(c_.log_dir);
  }
  epoch_loss_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(s_.ctx.device));
  summary_.best_accuracy = s_.position.best_accuracy();
  if (trace_.enabled()) open_trace();
  progress_ = std::make_unique<ProgressBar>(rank0_ ? max_step_ - s_.position.step() : 0);
}

// --trace: the phases, the collectives of both communicators, every gradient's completion, and
// the run's facts.
void Trainer::Loop::open_trace() {
  timer_.attach(&trace_, &trace_step_);
  const auto observe = [this](comm::Communicator* comm, TraceKind kind) {
    if (!comm) return;
    comm->set_observer([this, kind](int op, comm::Clock::time_point a, comm::Clock::time_point b) {
      trace_.add(kind, op, trace_step_, a, b);
    });
  };
  if (s_.distributed()) observe(s_.ctx.comm, TraceKind::Collective);
  observe(s_.ctx.sync_bn_comm, TraceKind::SyncBnCollective);
  trace_.set_parameter_names(s_.net->named_parameters().keys());
  gradient_timeline_ = std::make_unique<GradientTimeline>(s_.net->parameters(), trace_, &trace_step_);
  trace_.set_facts(trace_facts(c_, s_.ctx, *s_.net, s_.reducer.get()));
}

// The observers and hooks point into this Loop: gone before it is (also when a step throws).
void Trainer::Loop::close_trace() {
  if (!trace_.enabled()) return;
  if (s_.distributed()) s_.ctx.comm->set_observer(nullptr);
  if (s_.ctx.sync_bn_comm) s_.ctx.sync_bn_comm->set_observer(nullptr);
  gradient_timeline_.reset();
}

// The timed steps start after the warm-up; its queued work stays out of them.
void Trainer::Loop::start_timing_if_due() {
  if (steps_this_run_ != warmup_) return;
  wait_for_device();
  timer_.reset();
  collectives_at_timing_start_ = s_.distributed() ? s_.ctx.comm->collectives_issued() : 0;
}

Trainer::Loop::StepResult Trainer::Loop::train_step() {
  const auto& pos = s_.position;
  s_.fault.before_step(s_.ctx.rank, pos.step(), *s_.net);
  trace_step_ = pos.step() + 1;
  lr_ = s_.schedule.lr_at(pos.epoch() + double(pos.samples_done()) / s_.train.size(),
                          double(global_batch_) / s_.train.size());
  set_lr(*s_.optimizer, lr_);
  // With --skip-nonfinite a skipped step must not leave its BatchNorm statistics behind either:
  // keep a copy of the buffers until the step is agreed.
  std::vector<torch::Tensor> buffers_before;
  if (c_.skip_nonfinite) {
    for (const auto& b : s_.net->buffers()) buffers_before.push_back(b.clone());
  }
  StepResult result;
  if (s_.graphed) {  // --cuda-graph: world one, one micro-batch, the update inside the graph
    data::Batch batch;
    {
      auto t = timer_.time(Phase::Data);
      batch = s_.loader->next();
    }
    auto t = timer_.time(Phase::Forward);  // the whole step: see log_summary
    result.loss = s_.graphed->run(batch.images, batch.labels);
  } else {
    result.loss = forward_backward();
  }
  if (s_.reducer) {
    {
      auto t = timer_.time(Phase::Communication);
      s_.reducer->finish();  // waits for every bucket, with the deadline
    }
    if (trace_.enabled()) {
      const auto& buckets = s_.reducer->timings();
      for (size_t i = 0; i < buckets.size(); ++i) {
        trace_.add(TraceKind::Bucket, int64_t(i), trace_step_, buckets[i].launched, buckets[i].completed);
      }
    }
  }
  // One small agreement per step: [stop requested, non-finite loss] summed over ranks.
  const bool want_stop = s_.ctx.stop_requested && s_.ctx.stop_requested();
  bool bad = false;
  if (c_.skip_nonfinite) {  // reads the loss back: the wait for the step's GPU work
    auto t = timer_.time(Phase::DeviceWait);
    bad = !std::isfinite(result.loss.item<double>());
  }
  auto flags = s_.agree(torch::tensor({int64_t(want_stop), int64_t(bad)}, torch::kInt64));
  stop_ = flags[0].item<int64_t>() > 0;
  const int64_t bad_ranks = flags[1].item<int64_t>();
  if (bad_ranks > 0) {
    torch::NoGradGuard no_grad;
    auto buffers = s_.net->buffers();
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(buffers_before[i]);
    result.skipped = true;
    ++summary_.skipped_steps;
    if (rank0_) spdlog::warn("step {}: non-finite loss on {} rank(s), update skipped ({} so far)",
                             pos.step() + 1, bad_ranks, summary_.skipped_steps);
  } else if (!s_.graphed) {
    auto t = timer_.time(Phase::Optimizer);
    s_.optimizer->step();
  }
  return result;
}

// The step's micro-batches (--accumulate), each forward and backward; the gradient buckets leave
// for the all-reduce during the last backward. Returns the mean loss.
torch::Tensor Trainer::Loop::forward_backward() {
  s_.optimizer->zero_grad();
  torch::Tensor loss;
  for (int64_t micro = 0; micro < c_.accumulate; ++micro) {
    data::Batch batch;
    {
      auto t = timer_.time(Phase::Data);
      batch = s_.loader->next();
    }
    if (s_.reducer) s_.reducer->prepare(/*sync=*/micro + 1 == c_.accumulate);
    torch::Tensor micro_loss;
    {
      auto t = timer_.time(Phase::Forward);
      micro_loss = torch::nn::functional::cross_entropy(s_.logits(batch.images), batch.labels,
                                                        ce_options_);
      if (s_.fault.poisons_loss(s_.ctx.rank, s_.position.step())) {
        micro_loss = micro_loss * std::nan("");
      }
    }
    {
      auto t = timer_.time(Phase::Backward);
      (c_.accumulate > 1 ? micro_loss / double(c_.accumulate) : micro_loss).backward();
    }
    loss = micro == 0 ? micro_loss.detach() : loss + micro_loss.detach();
  }
  return c_.accumulate > 1 ? loss / double(c_.accumulate) : loss;
}

void Trainer::Loop::count_step(const StepResult& step) {
  if (!step.skipped) {
    window_losses_.push_back(step.loss.to(torch::kFloat64));
    epoch_loss_ += window_losses_.back();
    ++epoch_steps_;
  }
  s_.position.step_done(global_batch_);
  ++steps_this_run_;
  if (steps_this_run_ > warmup_) ++summary_.steps_timed;
  window_images_ += global_batch_;
  epoch_images_ += global_batch_;
}

// The losses are checked for NaN/Inf at log points; every checkpoint is one too, so that a
// diverged model never replaces the last good last.pt.
bool Trainer::Loop::log_due(bool mid_checkpoint) const {
  const int64_t step = s_.position.step();
  return step % c_.log_every == 0 || step == max_step_ || mid_checkpoint || stop_;
}

void Trainer::Loop::end_log_window() {
  if (window_losses_.empty()) return;
  torch::Tensor losses;
  {
    auto t = timer_.time(Phase::DeviceWait);
    losses = torch::stack(window_losses_).cpu();  // one sync per window
  }
  auto finite = torch::isfinite(losses);
  if (!finite.all().item<bool>()) {
    const int64_t first_bad = finite.logical_not().nonzero()[0][0].item<int64_t>();
    throw NonFiniteLoss("rank " + std::to_string(s_.ctx.rank) + ": loss is " +
                        std::to_string(losses[first_bad].item<double>()) + " at step " +
                        std::to_string(s_.position.step() - int64_t(window_losses_.size()) +
                                       first_bad + 1) +
                        " (use --skip-nonfinite to skip such updates)");
  }
  last_loss_ = s_.global_mean(losses.sum()).item<double>() / double(window_losses_.size());
  last_rate_ = window_images_ / seconds_since(window_start_);
  if (rank0_) {
    const int64_t step = s_.position.step();
    tb_->add_scalar("train_loss", float(last_loss_), step);
    tb_->add_scalar("lr", float(lr_), step);
    tb_->add_scalar("images_per_s", float(last_rate_), step);
    if (!progress_->enabled()) {
      spdlog::info("epoch {} step {}/{} loss {:.4f} lr {:.3g} {:.0f} img/s", s_.position.epoch() + 1,
                   step, max_step_, last_loss_, lr_, last_rate_);
    }
  }
  window_losses_.clear();
  window_images_ = 0;
  window_start_ = Clock::now();
}

void Trainer::Loop::after_step(bool mid_checkpoint) {
  const bool verify_now =
      c_.verify_every > 0 && s_.position.step() % c_.verify_every == 0 && s_.distributed();
  if (verify_now || mid_checkpoint) {
    wait_for_device();  // both read tensors back: the steps' queued GPU work is step time
    s_.verify_replicas(timer_);
  }
  if (mid_checkpoint) {
    auto t = timer_.time(Phase::Checkpoint);
    s_.save({"last.pt"});  // mid-epoch: samples_done records where the epoch stands
  }
}

// Ends an epoch (completed, or cut short by --max-steps or a stop): evaluate, log, checkpoint.
void Trainer::Loop::finish_epoch(bool completed) {
  auto& pos = s_.position;
  const int64_t epoch = pos.epoch() + 1;  // 1-based, for people
  wait_for_device();
  const double epoch_seconds = seconds_since(epoch_start_);
  EpochMetrics m;
  m.epoch = epoch;
  m.step = pos.step();
  m.train_loss = s_.global_mean(epoch_loss_).item<double>() / std::max<int64_t>(epoch_steps_, 1);
  // No update applied this epoch (all skipped as non-finite, or a resume at its very end): there
  // is no training loss to report, not a loss of 0.
  if (epoch_steps_ == 0) m.train_loss = std::nan("");
  m.images_per_s = epoch_images_ / std::max(epoch_seconds, 1e-9);
  m.seconds = seconds_since(run_start_);
  m.lr = lr_;
  m.test_loss = m.test_accuracy = std::nan("");
  // A stop request is usually a preemption, with a grace period (Slurm: 30 s) before SIGKILL: the
  // checkpoint comes first, with no evaluation before it.
  const bool evaluate = c_.eval_every > 0 && !stop_ &&
                        (epoch % c_.eval_every == 0 || !completed || epoch == c_.epochs);
  if (evaluate && s_.evaluator->has_test_set()) {
    progress_->finish();
    auto t = timer_.time(Phase::Evaluation);
    auto eval = s_.evaluate();
    m.test_loss = eval.loss;
    m.test_accuracy = eval.accuracy;
    summary_.last_eval = eval;
  }
  const bool best = pos.note_accuracy(m.test_accuracy);
  summary_.best_accuracy = pos.best_accuracy();
  if (completed) pos.epoch_done();
  s_.verify_replicas(timer_);  // at every checkpoint
  if (rank0_) {
    if (std::isfinite(m.test_accuracy)) {
      tb_->add_scalar("test_loss", float(m.test_loss), epoch);
      tb_->add_scalar("test_accuracy", float(m.test_accuracy), epoch);
      spdlog::info("epoch {} {}: train loss {:.4f}, test loss {:.4f}, test accuracy {:.2f}%, "
                   "{:.0f} img/s, {:.1f} s", epoch, completed ? "done" : "stopped",
                   m.train_loss, m.test_loss, 100 * m.test_accuracy, m.images_per_s, epoch_seconds);
    } else {
      spdlog::info("epoch {} {}: train loss {:.4f}, {:.0f} img/s, {:.1f} s", epoch,
                   completed ? "done" : "stopped", m.train_loss, m.images_per_s, epoch_seconds);
    }
    metrics_->write(m);
    tb_->flush();
    auto t = timer_.time(Phase::Checkpoint);
    s_.persistence->save_epoch_end(epoch, completed, best, *s_.net, s_.optimizer.get(), pos.state());
  }
  summary_.epochs_completed = pos.epoch();
  summary_.final_train_loss = m.train_loss;
  epoch_loss_.zero_();
  epoch_steps_ = epoch_images_ = 0;
  epoch_start_ = Clock::now();
}

TrainSummary Trainer::Loop::finish_run() {
  {
    auto t = timer_.time(Phase::Checkpoint);
    s_.persistence->wait();  // the last files are on disk before the run reports them
  }
  progress_->finish();
  close_trace();
  trace_.write(c_.trace, s_.ctx.comm, s_.ctx.rank, s_.ctx.world_size);
  if (rank0_ && trace_.enabled()) {
    spdlog::info("trace of {} ranks written to {}", s_.ctx.world_size, c_.trace);
  }
  if (rank0_ && s_.verifications > 0) {
    spdlog::info("replica consistency verified {} times, no divergence", s_.verifications);
  }
  const auto& pos = s_.position;
  summary_.steps = pos.step();
  summary_.stopped_early = stop_;
  summary_.graph_replays = s_.graphed ? s_.graphed->replays() : 0;
  if (stop_ && rank0_) {
    spdlog::warn("stopped on request at step {} (epoch {}); {} holds the state; continue with the "
                 "same command plus --resume auto", pos.step(), pos.epoch() + 1,
                 s_.persistence->path("last.pt"));
  }
  summary_.train_seconds = seconds_since(run_start_);
  summary_.phases = timer_;
  if (s_.distributed() && summary_.steps_timed > 0) {  // evaluation and checkpoint ones included
    summary_.collectives_per_step =
        double(s_.ctx.comm->collectives_issued() - collectives_at_timing_start_) /
        summary_.steps_timed;
  }
  const double timed = timer_.step_seconds();
  summary_.images_per_s = timed > 0 ? summary_.steps_timed * double(global_batch_) / timed : 0.0;
  if (rank0_) {
    write_summary((std::filesystem::path(c_.log_dir) / "summary.json").string(), c_, s_.ctx, summary_);
    log_summary(c_, s_.ctx, summary_);
  }
  return summary_;
}

// Waits for the GPU work queued so far, timed as a step phase: without it a CUDA run's figures
// would count launches, not work (a graphed step launches in microseconds). Called only where the
// trainer reads results back anyway, never per step.
void Trainer::Loop::wait_for_device() {
  auto t = timer_.time(Phase::DeviceWait);
  if (s_.ctx.device.is_cuda()) torch::cuda::synchronize(s_.ctx.device.index());
}

}  // namespace dt::trainer
