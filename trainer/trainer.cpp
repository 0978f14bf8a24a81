// The training loop (see trainer.h for what a step does and which collectives it issues).
//
// Stream contract (CUDA): every step's work is queued on the current stream of this rank's GPU:
// the loader's batch arrives through an event from its side stream (data/side_stream.h), the
// gradient buckets leave and return through events on the NCCL stream (comm/nccl_backend.h), and
// a --cuda-graph step is replayed on the current stream (graphed_step.h). The host waits for the
// GPU only where it reads results anyway, each wait timed as "device_wait": once per log window
// (the losses), at the end of an epoch (metrics, evaluation, checkpoint), before a replica check
// or a mid-epoch checkpoint, at the start of the timed steps, and, with --skip-nonfinite, per
// step (the loss decides the update). Never elsewhere per step.
#include "trainer/trainer.h"

#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <thread>
#include "comm/errors.h"
#include "comm/reducer.h"
#include "comm/sync_batch_norm.h"
#include "data/errors.h"
#include "data/loader.h"
#include "model/batch_norm.h"
#include "model/conv3x3.h"
#include "model/network.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_writer.h"
#include "trainer/errors.h"
#include "trainer/fault_injection.h"
#include "trainer/graphed_step.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics.h"
#include "trainer/mixed_precision.h"
#include "trainer/optimizer.h"
#include "trainer/output_paths.h"
#include "trainer/progress.h"
#include "trainer/replica_check.h"
#include "trainer/resume_check.h"
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
  a.cutout = c.cutout;
  return a;
}

}  // namespace

struct Trainer::State {
  Config config;
  RunContext ctx;
  data::Dataset train, test;
  std::shared_ptr<model::Network> net;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<data::TrainLoader> loader;
  std::unique_ptr<data::EvalSet> eval_set;
  std::unique_ptr<comm::Reducer> reducer;  // world_size > 1
  std::unique_ptr<GraphedStep> graphed;    // --cuda-graph
  LrSchedule schedule;
  FaultInjection fault;
  bool channels_last = true;
  torch::ScalarType dtype = torch::kFloat32;  // parameters, inputs and logits
  bool bf16_autocast = false;                 // --precision bf16
  TrainingState position;  // where training stands (resumed or fresh)
  std::string resumed_from;  // the checkpoint file --resume loaded ("" : none)

  bool rank0() const { return ctx.rank == 0; }
  bool distributed() const { return ctx.comm && ctx.world_size > 1; }
  std::string path(const std::string& file) const {
    return (std::filesystem::path(config.checkpoint_dir) / file).string();
  }
  // The model's output in `dtype` (fp32 logits from a bf16 forward under --precision bf16).
  torch::Tensor logits(const torch::Tensor& images) {
    torch::Tensor out;
    {
      MixedPrecision scope(ctx.device, bf16_autocast);
      out = net->forward(images);
    }
    return out.to(dtype);
  }
  void set_up(const Config& config, const RunContext& ctx, data::Dataset train,
              data::Dataset test);
  void set_up_cuda_graph();
  void resume();
  // Rank 0 snapshots the state now and writes it to each of `files` (in the checkpoint folder)
  // in the background, then runs `after` there.
  void save(const std::vector<std::string>& files, std::function<void()> after = {});
  void prune_epoch_checkpoints();
  EvalResult evaluate();
  TrainSummary evaluate_checkpoint();
  // Sum over ranks of a small CPU int64 tensor (flags); identity at world one.
  torch::Tensor agree(torch::Tensor flags);
  torch::Tensor global_mean(const torch::Tensor& value);
  ReplicaCheck replica_check;
  int64_t verifications = 0;
  CheckpointWriter writer;  // after everything its jobs use (config), so it is destroyed first
  void verify_replicas(PhaseTimer& timer) {
    if (!distributed() || config.verify_every == 0) return;
    auto t = timer.time(Phase::Verify);
    const bool buffers_shared = model::synced_batch_norm_count(*net) > 0;
    replica_check.verify(watched_tensors(*net, *optimizer, buffers_shared), *ctx.comm,
                         position.step, config.checkpoint_dir);
    ++verifications;
  }
};

// Everything of the set-up that is this rank's own business (no collective).
void Trainer::State::set_up(const Config& config, const RunContext& ctx, data::Dataset train,
                            data::Dataset test) {
  auto& s = *this;
  s.config = config;
  s.ctx = ctx;
  s.train = std::move(train);
  s.test = std::move(test);
  s.channels_last = config.channels_last != "off";
  s.fault = FaultInjection::from_environment();
  if (s.rank0() && !config.eval_only) prepare_output_paths(config);  // --eval-only writes nothing

  torch::manual_seed(config.seed);  // identical initial weights on every rank
  s.net = model::make_model(config.model);
  s.fault.check_against(ctx.world_size, [&](const std::string& name) {
    return s.net->named_parameters().find(name) != nullptr;
  });
  s.dtype = config.precision == "fp64" ? torch::kFloat64 : torch::kFloat32;
  s.bf16_autocast = config.precision == "bf16";
  s.net->to(ctx.device, s.dtype);
  if (s.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : s.net->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  // Without a communicator (a world of one, no launcher) SyncBatchNorm is BatchNorm.
  const bool sync_bn =
      ctx.comm && (config.sync_bn == "on" || (config.sync_bn == "auto" && ctx.world_size > 1));
  if (sync_bn) {
    model::set_batch_norm_sync(*s.net, std::make_shared<comm::SyncBatchNorm>(*ctx.comm));
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
  if (!config.eval_only) {  // --eval-only reads no training set (launch/main.cpp)
    s.loader = std::make_unique<data::TrainLoader>(s.train, lo);
    if (s.loader->steps_per_epoch() < config.accumulate) {
      throw ConfigError("--accumulate " + std::to_string(config.accumulate) + " is more than the " +
                        std::to_string(s.loader->steps_per_epoch()) +
                        " batches of an epoch at this batch size and world size");
    }
  }
  if (s.test.size() > 0) {
    s.eval_set = std::make_unique<data::EvalSet>(s.test, ctx.device, s.dtype, s.channels_last);
  }
  s.optimizer = make_optimizer(config, s.net->parameters());
  s.schedule.kind = config.lr_schedule;
  s.schedule.base_lr = config.lr;
  s.schedule.total_epochs = double(config.epochs);
  s.schedule.warmup_epochs = config.warmup_epochs;
  s.schedule.step_epochs = config.lr_step_epochs;
  s.schedule.milestones = config.lr_milestones;
  s.schedule.gamma = config.lr_gamma;
  if (config.cuda_graph && !config.eval_only) s.set_up_cuda_graph();  // no steps to capture

  s.resume();  // every rank reads the checkpoint onto its own device
}

// What trainer/graphed_step.h needs that only this run's context can tell.
void Trainer::State::set_up_cuda_graph() {
  if (ctx.world_size > 1) {
    // The gradient buckets and SyncBatchNorm launch their collectives from hooks, each under a
    // host deadline; a replayed graph would run them with neither.
    throw ConfigError("--cuda-graph runs at world size 1 only (single-GPU runs); this run has " +
                      std::to_string(ctx.world_size) + " ranks");
  }
  if (model::synced_batch_norm_count(*net) > 0) {
    // --sync-bn on under a launcher of one: its collectives wait on the host, which no capture allows.
    throw ConfigError("--cuda-graph and --sync-bn on exclude each other (SyncBatchNorm's "
                      "collectives cannot be captured)");
  }
  if (fault.action == "nan") {
    throw ConfigError("DT_FAULT_INJECT action=nan changes the loss inside the step, which "
                      "--cuda-graph captures once: not with --cuda-graph");
  }
  if (!ctx.device.is_cuda()) {
    throw ConfigError("--cuda-graph needs a CUDA device; this run is on " + ctx.device.str());
  }
  device_lr(*optimizer).use_device_lr(ctx.device, config.lr);
  auto ce_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(config.label_smoothing);
  GraphedStepHooks hooks;
  hooks.step = [this, ce_options](const torch::Tensor& images, const torch::Tensor& labels) {
    auto loss = torch::nn::functional::cross_entropy(logits(images), labels, ce_options);
    loss.backward();
    optimizer->step();
    return loss.detach();
  };
  hooks.zero_grad = [this] { optimizer->zero_grad(/*set_to_none=*/true); };
  hooks.replayed = [this] { device_lr(*optimizer).replayed(); };
  graphed = std::make_unique<GraphedStep>(ctx.device, std::move(hooks));
}

Trainer::Trainer(const Config& config, const RunContext& ctx, data::Dataset train,
                 data::Dataset test)
    : s_(std::make_unique<State>()) {
  auto& s = *s_;
  // Up to the first collective below, everything is this rank's own business; bad input found
  // in it (flags that only now meet the data, a checkpoint, an output folder) is agreed on
  // before any rank moves on, so the job stops once, with one line, instead of once per rank.
  std::exception_ptr bad_input;
  try {
    s.set_up(config, ctx, std::move(train), std::move(test));
  } catch (const ConfigError&) {
    bad_input = std::current_exception();
  } catch (const CheckpointError&) {
    bad_input = std::current_exception();
  } catch (const data::DataError&) {
    bad_input = std::current_exception();
  }
  if (ctx.comm && ctx.world_size > 1) {
    const int first = ctx.comm->first_failing_rank(bad_input != nullptr);
    if (first < ctx.world_size) throw comm::JointStop(ctx.rank == first ? bad_input : nullptr);
  } else if (bad_input) {
    std::rethrow_exception(bad_input);
  }
  if (ctx.world_size > 1) {
    TORCH_CHECK(ctx.comm, "Trainer: a world of ", ctx.world_size, " needs a communicator");
    // Every rank must resume from the same place (a node-local or stale checkpoint folder would
    // otherwise give ranks different loops).
    const auto& p = s.position;
    comm::require_same_text_on_all_ranks(
        *ctx.comm,
        "epochs done = " + std::to_string(p.epoch) + "\nsamples done in the next epoch = " +
            std::to_string(p.samples_done) + "\nsteps done = " + std::to_string(p.step) + "\n",
        "the resume position of --resume");
    comm::broadcast_model(*s.net, *ctx.comm);  // every replica starts from rank 0's weights
    comm::ReducerOptions ro;
    ro.bucket_mb = config.bucket_mb;
    ro.overlap = config.overlap;
    ro.collectives_in_backward = model::synced_batch_norm_count(*s.net) > 0;
    s.reducer = std::make_unique<comm::Reducer>(s.net->parameters(), *ctx.comm, ro);
  }
}

Trainer::~Trainer() = default;

torch::nn::Module& Trainer::model() { return *s_->net; }

void Trainer::State::resume() {
  position.world_size = ctx.world_size;
  position.model_name = config.model;
  position.config = to_string(config);
  position.seed = int64_t(config.seed);
  position.train_size = train.size();
  if (config.resume.empty()) return;
  std::string file = config.resume;
  if (config.resume == "auto") {
    file = path("last.pt");
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      if (config.eval_only) throw CheckpointError("--eval-only --resume auto: no " + file + " to evaluate");
      if (rank0()) spdlog::info("--resume auto: no {} yet, starting from scratch", file);
      return;
    }
  }
  // --eval-only needs the weights alone: any optimizer's checkpoint, any training position.
  auto loaded = load_checkpoint(file, *net, config.eval_only ? nullptr : optimizer.get(),
                                config.optimizer);
  if (loaded.full && loaded.state.model_name != config.model) {
    throw CheckpointError(file + ": checkpoint of --model " + loaded.state.model_name +
                          ", this run is --model " + config.model);
  }
  resumed_from = file;
  if (config.eval_only) {
    position.epoch = loaded.full ? loaded.state.epoch : -1;  // -1: a weights-only file does not say
    return;
  }
  if (!loaded.full) {
    if (rank0()) spdlog::info("initialised from the weights in {} (no training state in it)", file);
    return;
  }
  check_resumable(file, loaded.state, position);
  if (rank0()) {
    for (const auto& change : changed_settings(loaded.state.config, position.config)) {
      spdlog::info("resume: changed since {} was written: {}", file, change);
    }
  }
  const int64_t old_world = loaded.state.world_size;
  const TrainingState mine = position;
  position = loaded.state;
  position.world_size = mine.world_size;
  position.model_name = mine.model_name;
  position.config = mine.config;
  position.seed = mine.seed;
  position.train_size = mine.train_size;
  if (position.samples_done > 0) {
    loader->resume_at(position.epoch, position.samples_done);
  } else {
    loader->seek(position.epoch, 0);
  }
  if (rank0()) {
    spdlog::info("resumed from {}: {} epochs and {} steps done, {} samples into epoch {}", file,
                 position.epoch, position.step, position.samples_done, position.epoch + 1);
    if (old_world != ctx.world_size) {
      spdlog::info("the checkpoint was written by {} ranks, this run has {}: the remaining {} "
                   "samples of epoch {} are re-sharded over {} ranks",
                   old_world, ctx.world_size, train.size() - position.samples_done,
                   position.epoch + 1, ctx.world_size);
    }
  }
}

void Trainer::State::save(const std::vector<std::string>& files, std::function<void()> after) {
  if (!rank0()) return;
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(path(f));
  writer.write(checkpoint_bytes(*net, optimizer.get(), config.optimizer, position), std::move(paths),
               std::move(after));
}

void Trainer::State::prune_epoch_checkpoints() {
  if (!rank0() || config.keep <= 0) return;
  std::vector<std::pair<int64_t, std::string>> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(config.checkpoint_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("epoch_", 0) == 0 && name.size() > 9 && name.substr(name.size() - 3) == ".pt") {
      try {
        files.emplace_back(std::stoll(name.substr(6, name.size() - 9)), e.path().string());
      } catch (const std::exception&) {
      }
    }
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + size_t(config.keep) < files.size(); ++i) ::unlink(files[i].second.c_str());
}

torch::Tensor Trainer::State::agree(torch::Tensor flags) {
  if (distributed()) ctx.comm->all_reduce(flags);
  return flags;
}

torch::Tensor Trainer::State::global_mean(const torch::Tensor& value) {
  if (!distributed()) return value;
  auto cpu = value.to(torch::kCPU, torch::kFloat64).contiguous();
  ctx.comm->all_reduce(cpu);
  return (cpu / ctx.world_size).to(value.device());
}

EvalResult Trainer::State::evaluate() {
  auto forward = [&](const torch::Tensor& x) { return logits(x); };
  const bool flip = config.eval_tta == "flip";
  const int64_t n = eval_set ? eval_set->size() : 0;
  // rank0: rank 0 evaluates everything while the others wait in the broadcast below (with the
  // deadline). distributed: each rank evaluates a contiguous shard; the sums are reduced.
  EvalSums sums;
  if (config.eval_mode == "distributed" && distributed()) {
    // Per-rank BatchNorm lets the ranks' running statistics drift apart: evaluate rank 0's
    // model, the one that is checkpointed, not a different one on each shard.
    if (model::synced_batch_norm_count(*net) == 0) comm::broadcast_buffers(*net, *ctx.comm);
    const int64_t begin = n * ctx.rank / ctx.world_size, end = n * (ctx.rank + 1) / ctx.world_size;
    sums = evaluate_sums(*net, forward, *eval_set, begin, end, config.eval_batch, flip);
  } else if (rank0() && n > 0) {
    sums = evaluate_sums(*net, forward, *eval_set, 0, n, config.eval_batch, flip);
  }
  auto packed = torch::tensor({sums.loss_sum, double(sums.correct), double(sums.samples)},
                              torch::kFloat64);
  if (distributed()) {
    if (config.eval_mode == "distributed") {
      ctx.comm->all_reduce(packed);
    } else {
      ctx.comm->broadcast(packed, 0);  // every rank learns the result (and the best accuracy)
    }
  }
  EvalSums total;
  total.loss_sum = packed[0].item<double>();
  total.correct = int64_t(packed[1].item<double>());
  total.samples = int64_t(packed[2].item<double>());
  return total.result();
}

// --eval-only: one evaluation of the loaded checkpoint; logged, and printed on stdout for scripts.
TrainSummary Trainer::State::evaluate_checkpoint() {
  const auto start = Clock::now();
  TrainSummary summary;
  summary.last_eval = evaluate();
  summary.best_accuracy = summary.last_eval.accuracy;
  summary.epochs_completed = std::max<int64_t>(position.epoch, 0);
  summary.train_seconds = seconds_since(start);
  if (rank0()) {
    CheckpointEval e;
    e.checkpoint = resumed_from;
    e.model = config.model;
    e.eval_tta = config.eval_tta;
    e.precision = config.precision;
    e.epochs_trained = position.epoch;
    e.images = summary.last_eval.samples;
    e.test_loss = summary.last_eval.loss;
    e.test_accuracy = summary.last_eval.accuracy;
    e.seconds = summary.train_seconds;
    spdlog::info("evaluated {} ({} epochs trained): test loss {:.4f}, test accuracy {:.2f}% on {} "
                 "images (test-time augmentation: {}), {:.1f} s", e.checkpoint,
                 e.epochs_trained < 0 ? std::string("weights only, unknown") : std::to_string(e.epochs_trained),
                 e.test_loss, 100 * e.test_accuracy, e.images, e.eval_tta, e.seconds);
    std::printf("%s\n", to_json(e).c_str());
    std::fflush(stdout);
  }
  return summary;
}

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
