#include "trainer/trainer.h"

#include <chrono>
#include <filesystem>
#include "comm/reducer.h"
#include "comm/sync_batch_norm.h"
#include "data/loader.h"
#include "model/resnet.h"
#include "trainer/checkpoint.h"
#include "trainer/errors.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/phase_timer.h"
#include "trainer/progress.h"
#include "trainer/tensorboard.h"

namespace dt::trainer {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kWarmupSteps = 5;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

data::AugmentSpec augment_spec(const Config& c) {
  data::AugmentSpec a;
  a.mode = data::parse_augment_mode(c.augment);
  a.pad = c.crop_padding;
  a.pad_mode = data::parse_pad_mode(c.pad_mode);
  return a;
}

}  // namespace

struct Trainer::State {
  Config config;
  RunContext ctx;
  data::Dataset train, test;
  model::ResNet net{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<data::TrainLoader> loader;
  std::unique_ptr<data::EvalSet> eval_set;
  std::unique_ptr<comm::Reducer> reducer;  // world_size > 1
  LrSchedule schedule;
  bool channels_last = true;
  torch::ScalarType dtype = torch::kFloat32;
  int64_t total_steps = 0;
  int64_t steps_per_epoch = 0;  // optimizer steps
};

Trainer::Trainer(const Config& config, const RunContext& ctx, data::Dataset train,
                 data::Dataset test)
    : s_(std::make_unique<State>()) {
  auto& s = *s_;
  s.config = config;
  s.ctx = ctx;
  s.train = std::move(train);
  s.test = std::move(test);
  s.channels_last = config.channels_last != "off";

  torch::manual_seed(config.seed);  // identical initial weights on every rank
  s.net = model::make_resnet(config.model);
  s.dtype = config.precision == "fp64" ? torch::kFloat64 : torch::kFloat32;
  s.net->to(ctx.device, s.dtype);
  if (s.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : s.net->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }

  data::LoaderOptions lo;
  lo.augment = augment_spec(config);
  lo.shard.world_size = ctx.world_size;
  lo.shard.rank = ctx.rank;
  lo.shard.batch_per_rank = config.batch_size;
  lo.shard.drop_last = config.drop_last;
  lo.shard.seed = config.seed;
  lo.device = ctx.device;
  lo.channels_last = s.channels_last;
  lo.dtype = s.dtype;
  s.loader = std::make_unique<data::TrainLoader>(s.train, lo);
  if (s.test.size() > 0) {
    s.eval_set = std::make_unique<data::EvalSet>(s.test, ctx.device, s.dtype, s.channels_last);
  }

  const bool sync_bn = config.sync_bn == "on" || (config.sync_bn == "auto" && ctx.world_size > 1);
  if (sync_bn) {
    TORCH_CHECK(ctx.comm, "Trainer: --sync-bn needs a communicator");
    model::set_batch_norm_sync(*s.net, std::make_shared<comm::SyncBatchNorm>(*ctx.comm));
  }
  if (ctx.world_size > 1) {
    TORCH_CHECK(ctx.comm, "Trainer: a world of ", ctx.world_size, " needs a communicator");
    comm::broadcast_model(*s.net, *ctx.comm);  // every replica starts from rank 0's weights
    comm::ReducerOptions ro;
    ro.bucket_mb = config.bucket_mb;
    ro.overlap = config.overlap;
    s.reducer = std::make_unique<comm::Reducer>(s.net->parameters(), *ctx.comm, ro);
  }
  s.optimizer = make_optimizer(config, s.net->parameters());
  // One optimizer step consumes --accumulate loader batches (micro-batches).
  s.steps_per_epoch = std::max<int64_t>(1, s.loader->steps_per_epoch() / config.accumulate);
  s.total_steps = config.epochs * s.steps_per_epoch;
  if (config.max_steps > 0) s.total_steps = std::min(s.total_steps, config.max_steps);
  s.schedule.kind = config.lr_schedule;
  s.schedule.base_lr = config.lr;
  s.schedule.steps_per_epoch = s.steps_per_epoch;
  s.schedule.total_steps = config.epochs * s.steps_per_epoch;
  s.schedule.warmup_epochs = config.warmup_epochs;
  s.schedule.step_epochs = config.lr_step_epochs;
  s.schedule.gamma = config.lr_gamma;
}

Trainer::~Trainer() = default;

torch::nn::Module& Trainer::model() { return *s_->net; }

TrainSummary Trainer::run() {
  auto& s = *s_;
  const auto& c = s.config;
  const bool rank0 = s.ctx.rank == 0;
  const int64_t steps_per_epoch = s.steps_per_epoch;
  const auto& sampler = s.loader->sampler();

  if (rank0) {
    const int synced = model::synced_batch_norm_count(*s.net);
    spdlog::info("model {} ({} parameters) on {}, {} channels_last, {}", c.model,
                 model::parameter_count(*s.net), s.ctx.device.str(),
                 s.channels_last ? "with" : "without",
                 synced ? "SyncBatchNorm (" + std::to_string(synced) + " layers)"
                        : std::string("per-rank BatchNorm"));
    spdlog::info("data: {} train / {} test images from {}; augment {}", s.train.size(),
                 s.test.size(), s.train.source, c.augment);
    spdlog::info("batch {} per rank x {} ranks{} = {} global; {} steps per epoch; tail: {}",
                 c.batch_size, s.ctx.world_size,
                 c.accumulate > 1 ? " x " + std::to_string(c.accumulate) + " micro-batches" : "",
                 sampler.global_batch() * c.accumulate, steps_per_epoch,
                 c.drop_last ? "drop_last (" + std::to_string(sampler.dropped_per_epoch()) +
                                   " samples dropped per epoch)"
                             : "padded (" + std::to_string(sampler.padded_per_epoch()) +
                                   " samples repeated per epoch)");
  }

  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardWriter> tb;
  if (rank0) {
    metrics = std::make_unique<MetricsLog>(
        (std::filesystem::path(c.log_dir) / "metrics.jsonl").string());
    tb = std::make_unique<TensorBoardWriter>(c.log_dir);
  }

  auto forward = [&](const torch::Tensor& x) { return s.net->forward(x); };
  auto ce_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(c.label_smoothing);

  TrainSummary summary;
  PhaseTimer timer;
  ProgressBar progress(rank0 ? s.total_steps : 0);
  s.net->train();
  const auto run_start = Clock::now();
  auto window_start = Clock::now();
  auto epoch_start = Clock::now();
  int64_t window_images = 0, epoch_images = 0;
  torch::Tensor window_loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(s.ctx.device));
  torch::Tensor epoch_loss = window_loss.clone();
  int64_t window_steps = 0, epoch_steps = 0;
  double last_rate = 0, last_logged_loss = 0;

  // Sum of `value` over ranks divided by the world size (value is a 0-dim tensor).
  auto global_mean = [&](const torch::Tensor& value) {
    if (!s.ctx.comm || s.ctx.world_size == 1) return value;
    auto cpu = value.cpu();
    s.ctx.comm->all_reduce(cpu);
    return (cpu / s.ctx.world_size).to(value.device());
  };

  for (int64_t step = 0; step < s.total_steps; ++step) {
    // Each epoch starts at its own data epoch, whatever --accumulate left over.
    if (step % steps_per_epoch == 0) s.loader->seek(step / steps_per_epoch, 0);
    const double lr = s.schedule.lr_at(step);
    set_lr(*s.optimizer, lr);
    // Steady-state figures leave out the first steps (allocator and thread-pool warm-up).
    if (step == std::min<int64_t>(kWarmupSteps, s.total_steps - 1)) {
      timer.reset();
      summary.steps_timed = 0;
    }
    s.optimizer->zero_grad();
    data::Batch batch;
    torch::Tensor loss;
    for (int64_t micro = 0; micro < c.accumulate; ++micro) {
      {
        auto t = timer.time(Phase::Data);
        batch = s.loader->next();
      }
      const bool last = micro + 1 == c.accumulate;
      if (s.reducer) s.reducer->prepare(/*sync=*/last);  // no communication until the last
      torch::Tensor micro_loss;
      {
        auto t = timer.time(Phase::Forward);
        micro_loss = torch::nn::functional::cross_entropy(forward(batch.images), batch.labels,
                                                          ce_options);
      }
      {
        auto t = timer.time(Phase::Backward);
        (c.accumulate > 1 ? micro_loss / double(c.accumulate) : micro_loss).backward();
      }
      loss = micro == 0 ? micro_loss.detach() : loss + micro_loss.detach();
    }
    if (c.accumulate > 1) loss = loss / double(c.accumulate);
    if (s.reducer) {
      auto t = timer.time(Phase::Communication);
      s.reducer->finish();  // waits for every bucket, with the deadline
    }
    {
      auto t = timer.time(Phase::Optimizer);
      s.optimizer->step();
    }
    ++summary.steps_timed;

    auto l = loss.detach().to(torch::kFloat64);
    window_loss += l;
    epoch_loss += l;
    ++window_steps;
    ++epoch_steps;
    window_images += batch.images.size(0) * s.ctx.world_size * c.accumulate;
    epoch_images += batch.images.size(0) * s.ctx.world_size * c.accumulate;
    const int64_t done = step + 1;

    if (done % c.log_every == 0 || done == s.total_steps) {
      // The mean over all ranks; one host sync (and one small collective) per window.
      const double mean_loss = global_mean(window_loss).item<double>() / window_steps;
      if (!std::isfinite(mean_loss)) {
        throw NonFiniteLoss("loss is " + std::to_string(mean_loss) + " at step " +
                            std::to_string(done));
      }
      last_rate = window_images / seconds_since(window_start);
      last_logged_loss = mean_loss;
      if (rank0) {
        tb->add_scalar("train_loss", float(mean_loss), done);
        tb->add_scalar("lr", float(lr), done);
        tb->add_scalar("images_per_s", float(last_rate), done);
        if (!progress.enabled()) {
          spdlog::info("epoch {} step {}/{} loss {:.4f} lr {:.3g} {:.0f} img/s", batch.epoch + 1,
                       done, s.total_steps, mean_loss, lr, last_rate);
        }
      }
      window_loss.zero_();
      window_steps = 0;
      window_images = 0;
      window_start = Clock::now();
    }
    if (rank0) progress.update(done, last_logged_loss, last_rate);

    const bool epoch_end = done % steps_per_epoch == 0 || done == s.total_steps;
    if (epoch_end) {
      const int64_t epoch = step / steps_per_epoch + 1;
      const double epoch_seconds = seconds_since(epoch_start);
      EpochMetrics m;
      m.epoch = epoch;
      m.step = done;
      m.train_loss = global_mean(epoch_loss).item<double>() / std::max<int64_t>(epoch_steps, 1);
      m.images_per_s = epoch_images / epoch_seconds;
      m.seconds = seconds_since(run_start);
      m.lr = lr;
      const bool evaluate = c.eval_every > 0 && (epoch % c.eval_every == 0 || done == s.total_steps);
      if (rank0 && s.eval_set && evaluate) {
        progress.finish();
        auto t = timer.time(Phase::Evaluation);
        auto eval = evaluate_sums(*s.net, forward, *s.eval_set, 0, s.eval_set->size(),
                                  c.eval_batch).result();
        m.test_loss = eval.loss;
        m.test_accuracy = eval.accuracy;
        summary.last_eval = eval;
        summary.best_accuracy = std::max(summary.best_accuracy, eval.accuracy);
        tb->add_scalar("test_loss", float(eval.loss), epoch);
        tb->add_scalar("test_accuracy", float(eval.accuracy), epoch);
        spdlog::info("epoch {} done: train loss {:.4f}, test loss {:.4f}, test accuracy {:.2f}%, "
                     "{:.0f} img/s, {:.1f} s",
                     epoch, m.train_loss, eval.loss, 100 * eval.accuracy, m.images_per_s,
                     epoch_seconds);
      } else if (rank0) {
        m.test_loss = m.test_accuracy = std::nan("");
        spdlog::info("epoch {} done: train loss {:.4f}, {:.0f} img/s, {:.1f} s", epoch,
                     m.train_loss, m.images_per_s, epoch_seconds);
      }
      if (rank0) {
        metrics->write(m);
        tb->flush();
        auto t = timer.time(Phase::Checkpoint);
        CheckpointMeta meta{epoch, done, s.ctx.world_size, to_string(c)};
        save_checkpoint((std::filesystem::path(c.checkpoint_dir) / "last.pt").string(), *s.net,
                        meta);
      }
      summary.epochs_completed = epoch;
      summary.final_train_loss = m.train_loss;
      epoch_loss.zero_();
      epoch_steps = 0;
      epoch_images = 0;
      epoch_start = Clock::now();
    }
    summary.steps = done;
  }
  summary.train_seconds = seconds_since(run_start);
  summary.phases = timer;
  const double timed = timer.step_seconds();
  summary.images_per_s = timed > 0 ? summary.steps_timed * double(c.batch_size) *
                                         s.ctx.world_size * c.accumulate / timed
                                   : 0.0;
  if (rank0) {
    write_summary((std::filesystem::path(c.log_dir) / "summary.json").string(), c, s.ctx, summary);
    log_summary(c, s.ctx, summary);
  }
  return summary;
}

}  // namespace dt::trainer
