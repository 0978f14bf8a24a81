// Trainer::run(): the training loop, epoch by epoch and step by step, with the epoch-end
// evaluation, logs and checkpoints (the replica itself is built in trainer.cpp).
//
// Stream contract (CUDA): every step's work is queued on the current stream of this rank's GPU:
// the loader's batch arrives through an event from its side stream (data/side_stream.h), the
// gradient buckets leave and return through events on the NCCL stream (comm/nccl_backend.h), and
// a --cuda-graph step is replayed on the current stream (graphed_step.h). The host waits for the
// GPU only where it reads results anyway, each wait timed as "device_wait": once per log window
// (the losses), at the end of an epoch (metrics, evaluation, checkpoint), before a replica check
// or a mid-epoch checkpoint, at the start of the timed steps, and, with --skip-nonfinite, per
// step (the loss decides the update). Never elsewhere per step.
#include <signal.h>
#include <unistd.h>
#include <cmath>
#include <thread>
#include "comm/errors.h"
#include "model/conv3x3.h"
#include "trainer/errors.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/progress.h"
#include "trainer/tensorboard.h"
#include "trainer/trace.h"
#include "trainer/trainer_state.h"

namespace dt::trainer {
namespace {
constexpr int64_t kWarmupSteps = 5;  // steps of each run left out of the steady-state figures
}  // namespace

TrainSummary Trainer::run() {
  auto& s = *s_;
  const auto& c = s.config;
  if (c.eval_only) return s.evaluate_checkpoint();
  const bool rank0 = s.rank0();
  const auto& sampler = s.loader->sampler();
  const int64_t global_batch = sampler.global_batch() * c.accumulate;
  const int64_t dataset_size = s.train.size();
  auto steps_in = [&](int64_t epoch) { return s.loader->steps_in_epoch(epoch) / c.accumulate; };
  // The last step: the rest of the current epoch, then whole epochs (at this world size and
  // batch, which may differ from those of a resumed checkpoint), capped by --max-steps.
  const auto& start = s.position;
  int64_t max_step = start.epoch >= c.epochs ? start.step
                     : start.step + steps_in(start.epoch) +
                           (c.epochs - start.epoch - 1) * (sampler.steps_per_epoch() / c.accumulate);
  if (c.max_steps > 0) max_step = std::min(max_step, c.max_steps);
  if (max_step <= start.step) {
    // A requeued job whose checkpoint already holds every epoch (or --max-steps) asked for: say
    // so and leave the run's files as they are, rather than log an empty run over them.
    if (rank0) {
      spdlog::info("nothing to train: {} has {} epochs and {} steps done{}, and this run asks for "
                   "--epochs {}{}", s.resumed_from, start.epoch, start.step,
                   start.samples_done > 0 ? " (and " + std::to_string(start.samples_done) +
                                                " samples of epoch " + std::to_string(start.epoch + 1) + ")"
                                          : "",
                   c.epochs, c.max_steps > 0 ? " --max-steps " + std::to_string(c.max_steps) : "");
    }
    TrainSummary done;
    done.steps = start.step;
    done.epochs_completed = start.epoch;
    done.best_accuracy = start.best_accuracy;
    return done;
  }

  if (rank0) {
    const int synced = model::synced_batch_norm_count(*s.net);
    // Where model/conv3x3.h runs its stride-1 layers as Winograd (the stem and strided ones never).
    const bool winograd = s.ctx.device.is_cpu() && c.precision == "fp32" && s.channels_last &&
                          model::conv3x3_algorithm() == model::Conv3x3Algorithm::Auto &&
                          model::winograd_available();
    spdlog::info("model {} ({} parameters) on {}, {}, {} channels_last, {}{}", c.model,
                 model::parameter_count(*s.net), s.ctx.device.str(), c.precision,
                 s.channels_last ? "with" : "without",
                 synced ? "SyncBatchNorm (" + std::to_string(synced) + " layers)"
                        : std::string("per-rank BatchNorm"),
                 winograd ? ", Winograd 3x3 convolutions" : "");
    spdlog::info("data: {} train / {} test images from {}; augment {}", s.train.size(),
                 s.test.size(), s.train.source, c.augment);
    // What an epoch really trains on: whole steps of whole accumulations (micro-batches left
    // over after the last full accumulation are not trained, padded ones included).
    const int64_t trained = steps_in(1 << 30) * global_batch;
    const int64_t unused = dataset_size - trained;
    spdlog::info("batch {} per rank x {} ranks{} = {} global; {} steps per epoch; tail: {}",
                 c.batch_size, s.ctx.world_size,
                 c.accumulate > 1 ? " x " + std::to_string(c.accumulate) + " micro-batches" : "",
                 global_batch, steps_in(1 << 30),
                 unused > 0   ? std::to_string(unused) + " of " + std::to_string(dataset_size) +
                                    " samples not trained per epoch (" +
                                    (c.drop_last ? "drop_last" : "after padding") +
                                    (c.accumulate > 1 ? ", and micro-batches short of an accumulation)"
                                                      : ")")
                 : unused < 0 ? "padded (" + std::to_string(-unused) + " samples repeated per epoch)"
                              : "none (the global batch divides the training set)");
  }

  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardWriter> tb;
  if (rank0) {
    metrics = std::make_unique<MetricsLog>((std::filesystem::path(c.log_dir) / "metrics.jsonl").string());
    tb = std::make_unique<TensorBoardWriter>(c.log_dir);
  }
  auto ce_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.label_smoothing);
  auto on_device = torch::TensorOptions().dtype(torch::kFloat64).device(s.ctx.device);

  TrainSummary summary;
  summary.best_accuracy = s.position.best_accuracy;
  Trace trace(!c.trace.empty());
  PhaseTimer timer;
  int64_t trace_step = 0;
  if (trace.enabled()) {
    timer.attach(&trace, &trace_step);
    if (s.distributed()) {
      s.ctx.comm->set_observer([&](int op, comm::Clock::time_point a, comm::Clock::time_point b) {
        trace.add(TraceKind::Collective, op, trace_step, a, b);
      });
    }
  }
  ProgressBar progress(rank0 ? max_step - s.position.step : 0);
  s.net->train();
  const auto run_start = Clock::now();
  auto window_start = Clock::now(), epoch_start = Clock::now();
  int64_t window_images = 0, epoch_images = 0, epoch_steps = 0, steps_this_run = 0;
  std::vector<torch::Tensor> window_losses;  // per step, on the device: no sync until logged
  torch::Tensor epoch_loss = torch::zeros({}, on_device);
  double last_rate = 0, last_loss = 0, lr = c.lr;

  auto& pos = s.position;
  // Waits for the GPU work queued so far, timed as a step phase: without it a CUDA run's figures
  // would count launches, not work (a graphed step launches in microseconds). Called only where
  // the trainer reads results back anyway, never per step.
  auto wait_for_device = [&] {
    auto t = timer.time(Phase::DeviceWait);
    if (s.ctx.device.is_cuda()) torch::cuda::synchronize(s.ctx.device.index());
  };
  bool stop = false;  // a stop request (SIGTERM/SIGUSR1), agreed by every rank
  // Ends an epoch (completed, or cut short by --max-steps or a stop): evaluate, log, checkpoint.
  auto finish_epoch = [&](bool completed) {
    const int64_t epoch = pos.epoch + 1;  // 1-based, for people
    wait_for_device();
    const double epoch_seconds = seconds_since(epoch_start);
    EpochMetrics m;
    m.epoch = epoch;
    m.step = pos.step;
    m.train_loss = s.global_mean(epoch_loss).item<double>() / std::max<int64_t>(epoch_steps, 1);
    // No update applied this epoch (all skipped as non-finite, or a resume at its very end):
    // there is no training loss to report, not a loss of 0.
    if (epoch_steps == 0) m.train_loss = std::nan("");
    m.images_per_s = epoch_images / std::max(epoch_seconds, 1e-9);
    m.seconds = seconds_since(run_start);
    m.lr = lr;
    m.test_loss = m.test_accuracy = std::nan("");
    // A stop request is usually a preemption, with a grace period (Slurm: 30 s) before SIGKILL:
    // the checkpoint comes first, with no evaluation before it.
    const bool evaluate = c.eval_every > 0 && !stop &&
                          (epoch % c.eval_every == 0 || !completed || epoch == c.epochs);
    if (evaluate && s.eval_set) {
      progress.finish();
      auto t = timer.time(Phase::Evaluation);
      auto eval = s.evaluate();
      m.test_loss = eval.loss;
      m.test_accuracy = eval.accuracy;
      summary.last_eval = eval;
    }
    const bool best = std::isfinite(m.test_accuracy) && m.test_accuracy > pos.best_accuracy;
    if (best) pos.best_accuracy = m.test_accuracy;
    summary.best_accuracy = pos.best_accuracy;
    if (completed) {
      pos.epoch += 1;
      pos.samples_done = 0;
    }
    s.verify_replicas(timer);  // at every checkpoint
    if (rank0) {
      if (std::isfinite(m.test_accuracy)) {
        tb->add_scalar("test_loss", float(m.test_loss), epoch);
        tb->add_scalar("test_accuracy", float(m.test_accuracy), epoch);
        spdlog::info("epoch {} {}: train loss {:.4f}, test loss {:.4f}, test accuracy {:.2f}%, "
                     "{:.0f} img/s, {:.1f} s", epoch, completed ? "done" : "stopped",
                     m.train_loss, m.test_loss, 100 * m.test_accuracy, m.images_per_s, epoch_seconds);
      } else {
        spdlog::info("epoch {} {}: train loss {:.4f}, {:.0f} img/s, {:.1f} s", epoch,
                     completed ? "done" : "stopped", m.train_loss, m.images_per_s, epoch_seconds);
      }
      metrics->write(m);
      tb->flush();
      auto t = timer.time(Phase::Checkpoint);
      // One snapshot for all of this epoch's files, written while the next epoch trains.
      std::vector<std::string> files{"last.pt"};
      std::function<void()> after;
      if (best) files.push_back("best.pt");
      if (completed && c.checkpoint_every > 0 && epoch % c.checkpoint_every == 0) {
        files.push_back("epoch_" + std::to_string(epoch) + ".pt");
        after = [&s] { s.prune_epoch_checkpoints(); };
      }
      s.save(files, std::move(after));
    }
    summary.epochs_completed = pos.epoch;
    summary.final_train_loss = m.train_loss;
    epoch_loss.zero_();
    epoch_steps = epoch_images = 0;
    epoch_start = Clock::now();
  };

  // Steady-state figures leave out the first steps of this run (allocator, thread pools).
  int64_t collectives_at_timing_start = 0;
  const int64_t warmup = std::max<int64_t>(0, std::min(kWarmupSteps, max_step - pos.step - 1));
  while (!stop && pos.epoch < c.epochs && pos.step < max_step) {
    if (pos.samples_done == 0) s.loader->seek(pos.epoch, 0);
    const int64_t first = pos.samples_done / global_batch;  // resumed part-way: steps already done
    const int64_t steps = first + steps_in(pos.epoch);
    int64_t k = first;
    for (; k < steps && pos.step < max_step && !stop; ++k) {
      if (steps_this_run == warmup) {
        wait_for_device();  // the warm-up steps' queued work stays out of the timed steps
        timer.reset();
        collectives_at_timing_start = s.distributed() ? s.ctx.comm->collectives_issued() : 0;
      }
      if (s.fault.fires(s.ctx.rank, pos.step)) {
        if (s.fault.action == "sleep") std::this_thread::sleep_for(std::chrono::duration<double>(s.fault.seconds));
        if (s.fault.action == "kill") ::kill(::getpid(), SIGKILL);
        if (s.fault.action == "corrupt") {
          torch::NoGradGuard ng;
          s.net->named_parameters()[s.fault.argument].add_(1.0);
        }
      }
      trace_step = pos.step + 1;
      lr = s.schedule.lr_at(pos.epoch + double(pos.samples_done) / dataset_size,
                            double(global_batch) / dataset_size);
      set_lr(*s.optimizer, lr);
      // With --skip-nonfinite a skipped step must not leave its BatchNorm statistics behind
      // either: keep a copy of the buffers until the step is agreed.
      std::vector<torch::Tensor> buffers_before;
      if (c.skip_nonfinite) {
        for (const auto& b : s.net->buffers()) buffers_before.push_back(b.clone());
      }
      data::Batch batch;
      torch::Tensor loss;
      if (s.graphed) {  // --cuda-graph: world one, one micro-batch, the update inside the graph
        {
          auto t = timer.time(Phase::Data);
          batch = s.loader->next();
        }
        auto t = timer.time(Phase::Forward);  // the whole step: see log_summary
        loss = s.graphed->run(batch.images, batch.labels);
      } else {
        s.optimizer->zero_grad();
        for (int64_t micro = 0; micro < c.accumulate; ++micro) {
          {
            auto t = timer.time(Phase::Data);
            batch = s.loader->next();
          }
          if (s.reducer) s.reducer->prepare(/*sync=*/micro + 1 == c.accumulate);
          torch::Tensor micro_loss;
          {
            auto t = timer.time(Phase::Forward);
            micro_loss = torch::nn::functional::cross_entropy(s.logits(batch.images),
                                                              batch.labels, ce_options);
            if (s.fault.fires(s.ctx.rank, pos.step) && s.fault.action == "nan") {
              micro_loss = micro_loss * std::nan("");
            }
          }
          {
            auto t = timer.time(Phase::Backward);
            (c.accumulate > 1 ? micro_loss / double(c.accumulate) : micro_loss).backward();
          }
          loss = micro == 0 ? micro_loss.detach() : loss + micro_loss.detach();
        }
        if (c.accumulate > 1) loss = loss / double(c.accumulate);
      }
      if (s.reducer) {
        auto t = timer.time(Phase::Communication);
        s.reducer->finish();  // waits for every bucket, with the deadline
      }
      if (s.reducer && trace.enabled()) {
        const auto& buckets = s.reducer->timings();
        for (size_t i = 0; i < buckets.size(); ++i) {
          trace.add(TraceKind::Bucket, int64_t(i), trace_step, buckets[i].launched, buckets[i].completed);
        }
      }
      // One small agreement per step: [stop requested, non-finite loss] summed over ranks.
      const bool want_stop = s.ctx.stop_requested && s.ctx.stop_requested();
      bool bad = false;
      if (c.skip_nonfinite) {  // reads the loss back: the wait for the step's GPU work
        auto t = timer.time(Phase::DeviceWait);
        bad = !std::isfinite(loss.item<double>());
      }
      auto flags = s.agree(torch::tensor({int64_t(want_stop), int64_t(bad)}, torch::kInt64));
      stop = flags[0].item<int64_t>() > 0;
      if (flags[1].item<int64_t>() > 0) {
        torch::NoGradGuard no_grad;
        auto buffers = s.net->buffers();
        for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(buffers_before[i]);
        ++summary.skipped_steps;
        if (rank0) spdlog::warn("step {}: non-finite loss on {} rank(s), update skipped ({} so far)",
                                pos.step + 1, flags[1].item<int64_t>(), summary.skipped_steps);
      } else {
        if (!s.graphed) {
          auto t = timer.time(Phase::Optimizer);
          s.optimizer->step();
        }
        window_losses.push_back(loss.to(torch::kFloat64));
        epoch_loss += window_losses.back();
        ++epoch_steps;
      }
      ++pos.step;
      ++steps_this_run;
      pos.samples_done += global_batch;
      if (steps_this_run > warmup) ++summary.steps_timed;
      window_images += global_batch;
      epoch_images += global_batch;

      const bool mid_checkpoint =
          c.checkpoint_every_steps > 0 && pos.step % c.checkpoint_every_steps == 0 && k + 1 < steps;
      // The losses are checked for NaN/Inf at log points; every checkpoint is one too, so that
      // a diverged model never replaces the last good last.pt.
      const bool log_now = pos.step % c.log_every == 0 || pos.step == max_step || k + 1 == steps ||
                           mid_checkpoint || stop;
      if (log_now && !window_losses.empty()) {
        torch::Tensor losses;
        {
          auto t = timer.time(Phase::DeviceWait);
          losses = torch::stack(window_losses).cpu();  // one sync per window
        }
        auto finite = torch::isfinite(losses);
        if (!finite.all().item<bool>()) {
          const int64_t first_bad = finite.logical_not().nonzero()[0][0].item<int64_t>();
          throw NonFiniteLoss("rank " + std::to_string(s.ctx.rank) + ": loss is " +
                              std::to_string(losses[first_bad].item<double>()) + " at step " +
                              std::to_string(pos.step - int64_t(window_losses.size()) + first_bad + 1) +
                              " (use --skip-nonfinite to skip such updates)");
        }
        last_loss = s.global_mean(losses.sum()).item<double>() / double(window_losses.size());
        last_rate = window_images / seconds_since(window_start);
        if (rank0) {
          tb->add_scalar("train_loss", float(last_loss), pos.step);
          tb->add_scalar("lr", float(lr), pos.step);
          tb->add_scalar("images_per_s", float(last_rate), pos.step);
          if (!progress.enabled()) {
            spdlog::info("epoch {} step {}/{} loss {:.4f} lr {:.3g} {:.0f} img/s", pos.epoch + 1,
                         pos.step, max_step, last_loss, lr, last_rate);
          }
        }
        window_losses.clear();
        window_images = 0;
        window_start = Clock::now();
      }
      if (rank0) progress.update(steps_this_run, last_loss, last_rate);
      const bool verify_now = c.verify_every > 0 && pos.step % c.verify_every == 0 && s.distributed();
      if (verify_now || mid_checkpoint) {
        wait_for_device();  // both read tensors back: the steps' queued GPU work is step time
        s.verify_replicas(timer);
      }
      if (mid_checkpoint) {
        auto t = timer.time(Phase::Checkpoint);
        s.save({"last.pt"});  // mid-epoch: samples_done records where the epoch stands
      }
    }
    finish_epoch(/*completed=*/k == steps);
  }
  {
    auto t = timer.time(Phase::Checkpoint);
    s.writer.wait();  // the last files are on disk before the run reports them
  }
  progress.finish();
  if (s.distributed()) s.ctx.comm->set_observer(nullptr);
  trace.write(c.trace, s.ctx.comm, s.ctx.rank, s.ctx.world_size);
  if (rank0 && trace.enabled()) spdlog::info("trace of {} ranks written to {}", s.ctx.world_size, c.trace);
  if (rank0 && s.verifications > 0) {
    spdlog::info("replica consistency verified {} times, no divergence", s.verifications);
  }
  summary.steps = pos.step;
  summary.stopped_early = stop;
  summary.graph_replays = s.graphed ? s.graphed->replays() : 0;
  if (stop && rank0) {
    spdlog::warn("stopped on request at step {} (epoch {}); {} holds the state; continue with the "
                 "same command plus --resume auto", pos.step, pos.epoch + 1, s.path("last.pt"));
  }
  summary.train_seconds = seconds_since(run_start);
  summary.phases = timer;
  if (s.distributed() && summary.steps_timed > 0) {  // evaluation and checkpoint ones included
    summary.collectives_per_step =
        double(s.ctx.comm->collectives_issued() - collectives_at_timing_start) / summary.steps_timed;
  }
  const double timed = timer.step_seconds();
  summary.images_per_s = timed > 0 ? summary.steps_timed * double(global_batch) / timed : 0.0;
  if (rank0) {
    write_summary((std::filesystem::path(c.log_dir) / "summary.json").string(), c, s.ctx, summary);
    log_summary(c, s.ctx, summary);
  }
  return summary;
}

}  // namespace dt::trainer
