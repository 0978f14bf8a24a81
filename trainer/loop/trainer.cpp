// Building one replica: set-up from the configuration (model, optimizer, loader, SyncBatchNorm,
// the Reducer, the --cuda-graph step), --resume, checkpoints, and evaluation. The training loop
// itself, and its stream contract, are in training_loop.cpp.
#include "trainer/loop/trainer_state.h"

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include "comm/errors.h"
#include "comm/model_sync.h"
#include "comm/sync_batch_norm.h"
#include "data/errors.h"
#include "trainer/config/errors.h"
#include "trainer/checkpoint/input_contract.h"
#include "trainer/report/metrics.h"
#include "trainer/optim/optimizer.h"
#include "trainer/report/output_paths.h"
#include "trainer/checkpoint/resume_check.h"

namespace dt::trainer {
namespace {

data::AugmentSpec augment_spec(const Config& c) {
  data::AugmentSpec a;
  a.mode = c.augment;
  a.pad = c.crop_padding;
  a.pad_mode = c.pad_mode;
  a.cutout = c.cutout;
  a.normalize = c.normalize == data::Normalization::Cifar;  // resolved by set_up
  return a;
}

}  // namespace


// Everything of the set-up that is this rank's own business (no collective).
void Trainer::State::set_up(const Config& config, const RunContext& ctx, data::Dataset train,
                            data::Dataset test) {
  auto& s = *this;
  s.config = config;
  // A Config built without the command line (tests, embedders) may still say auto.
  if (!config.eval_only) s.config.normalize = data::resolve(config.normalize, config.augment);
  s.ctx = ctx;
  s.train = std::move(train);
  s.test = std::move(test);
  s.channels_last = config.channels_last != Toggle::Off;
  s.fault = FaultInjection::from_environment();
  s.persistence = std::make_unique<Persistence>(config, ctx.rank);
  if (s.rank0() && !config.eval_only) prepare_output_paths(config);  // --eval-only writes nothing

  torch::manual_seed(config.seed);  // identical initial weights on every rank
  s.net = model::make_model(config.model);
  s.fault.check_against(ctx.world_size, [&](const std::string& name) {
    return s.net->named_parameters().find(name) != nullptr;
  });
  s.dtype = config.precision == Precision::Fp64 ? torch::kFloat64 : torch::kFloat32;
  s.bf16_autocast = config.precision == Precision::Bf16;
  s.net->to(ctx.device, s.dtype);
  if (s.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : s.net->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  // Without a communicator (a world of one, no launcher) SyncBatchNorm is BatchNorm.
  if (ctx.comm && sync_batch_norm(config, ctx.world_size)) {
    auto& bn_comm = ctx.sync_bn_comm ? *ctx.sync_bn_comm : *ctx.comm;
    model::set_batch_norm_sync(*s.net, std::make_shared<comm::SyncBatchNorm>(bn_comm));
  }

  data::LoaderOptions lo;
  lo.augment = augment_spec(s.config);
  lo.shard.world_size = ctx.world_size;
  lo.shard.rank = ctx.rank;
  lo.shard.batch_per_rank = config.batch_size;
  lo.shard.drop_last = config.drop_last;
  lo.shard.seed = config.seed;
  lo.device = ctx.device;
  lo.channels_last = s.channels_last;
  lo.dtype = s.dtype;
  if (!config.eval_only) {  // --eval-only reads no training set (launch/app/main.cpp)
    s.loader = std::make_unique<data::TrainLoader>(s.train, lo);
    if (s.loader->steps_per_epoch() < config.accumulate) {
      throw ConfigError("--accumulate " + std::to_string(config.accumulate) + " is more than the " +
                        std::to_string(s.loader->steps_per_epoch()) +
                        " batches of an epoch at this batch size and world size");
    }
  }
  if (!config.eval_only) s.optimizer = make_optimizer(config, s.net->parameters());  // no steps
  s.schedule.kind = config.lr_schedule;
  s.schedule.base_lr = config.lr;
  s.schedule.total_epochs = double(config.epochs);
  s.schedule.warmup_epochs = config.warmup_epochs;
  s.schedule.step_epochs = config.lr_step_epochs;
  s.schedule.milestones = config.lr_milestones;
  s.schedule.gamma = config.lr_gamma;
  if (config.cuda_graph && !config.eval_only) s.set_up_cuda_graph();  // no steps to capture

  s.resume();  // every rank reads the checkpoint onto its own device
  // After resume(): --eval-only learns the normalisation from the checkpoint.
  s.evaluator = std::make_unique<Evaluator>(s.config, ctx, s.test, s.dtype, s.channels_last,
                                            s.statistics_shared());
}

// What trainer/loop/graphed_step.h needs that only this run's context can tell.
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
  if (fault.action == FaultAction::Nan) {
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
  } catch (const BadInput&) {
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
    const auto& p = s.position.state();
    comm::require_same_text_on_all_ranks(
        *ctx.comm,
        "epochs done = " + std::to_string(p.epoch) + "\nsamples done in the next epoch = " +
            std::to_string(p.samples_done) + "\nsteps done = " + std::to_string(p.step) + "\n",
        "the resume position of --resume");
    comm::broadcast_model(*s.net, *ctx.comm);  // every replica starts from rank 0's weights
    if (config.eval_only) return;  // no gradients to reduce
    comm::ReducerOptions ro;
    ro.bucket_mb = config.bucket_mb;
    ro.overlap = config.overlap;
    ro.collectives_in_backward = model::synced_batch_norm_count(*s.net) > 0;
    s.reducer = std::make_unique<comm::Reducer>(s.net->named_parameters(), *ctx.comm, ro);
  }
}

Trainer::~Trainer() = default;

torch::nn::Module& Trainer::model() { return *s_->net; }

void Trainer::State::resume() {
  TrainingState fresh;
  fresh.world_size = ctx.world_size;
  fresh.model_name = config.model;
  fresh.config = to_string(config);
  fresh.seed = int64_t(config.seed);
  fresh.train_size = train.size();
  fresh.global_batch = config.batch_size * ctx.world_size * config.accumulate;
  if (!config.eval_only) fresh.input = config.normalize;  // resolved in set_up
  position = Position(fresh);
  // --eval-only needs the weights alone: any optimizer's checkpoint, any training position.
  const auto loaded = persistence->load(*net, config.eval_only ? nullptr : optimizer.get());
  if (!loaded) return;
  const std::string& file = persistence->resumed_from();
  if (config.eval_only) {
    const auto asked = config.normalize;
    const auto input = eval_normalization(asked, loaded->state.input, /*dist_train_file=*/loaded->full,
                                          data::resolve(asked, config.augment), file);
    config.normalize = input.normalization;
    if (rank0() && input.source != InputSource::Stored) spdlog::info("{}", no_contract_note(file, input));
    position.set_epochs_trained(loaded->full ? loaded->state.epoch : -1);  // -1: not said
    return;
  }
  if (!loaded->full) {
    if (rank0()) spdlog::info("initialised from the weights in {} (no training state in it)", file);
    return;
  }
  check_resumable(file, loaded->state, fresh);
  if (rank0()) {
    for (const auto& change : changed_settings(with_implicit_settings(loaded->state.config), fresh.config)) {
      spdlog::info("resume: changed since {} was written: {}", file, change);
    }
  }
  position.continue_from(loaded->state, *loader);
  if (rank0()) {
    const auto& p = position.state();
    spdlog::info("resumed from {}: {} epochs and {} steps done, {} samples into epoch {}", file,
                 p.epoch, p.step, p.samples_done, p.epoch + 1);
    if (loaded->state.world_size != ctx.world_size) {
      spdlog::info("the checkpoint was written by {} ranks, this run has {}: the remaining {} "
                   "samples of epoch {} are re-sharded over {} ranks",
                   loaded->state.world_size, ctx.world_size, train.size() - p.samples_done,
                   p.epoch + 1, ctx.world_size);
    }
    const std::string note = global_batch_note(file, loaded->state, fresh);
    if (!note.empty() && loaded->state.global_batch == fresh.global_batch) spdlog::info("{}", note);
    if (!note.empty() && loaded->state.global_batch != fresh.global_batch) spdlog::warn("{}", note);
  }
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

// --eval-only: one evaluation of the loaded checkpoint; logged, and printed on stdout for scripts.
TrainSummary Trainer::State::evaluate_checkpoint() {
  const auto start = Clock::now();
  TrainSummary summary;
  summary.last_eval = evaluate();
  summary.best_accuracy = summary.last_eval.accuracy;
  summary.epochs_completed = std::max<int64_t>(position.epoch(), 0);
  summary.train_seconds = seconds_since(start);
  if (rank0()) {
    CheckpointEval e;
    e.checkpoint = persistence->resumed_from();
    e.model = config.model;
    e.eval_tta = name_of(config.eval_tta);
    e.precision = name_of(config.precision);
    e.epochs_trained = position.epoch();
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

}  // namespace dt::trainer
