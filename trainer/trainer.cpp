// Building one replica: set-up from the configuration (model, optimizer, loader, SyncBatchNorm,
// the Reducer, the --cuda-graph step), --resume, checkpoints, and evaluation. The training loop
// itself, and its stream contract, are in training_loop.cpp.
#include "trainer/trainer_state.h"

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include "comm/errors.h"
#include "comm/sync_batch_norm.h"
#include "data/errors.h"
#include "trainer/errors.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/output_paths.h"
#include "trainer/resume_check.h"

namespace dt::trainer {
namespace {

data::AugmentSpec augment_spec(const Config& c) {
  data::AugmentSpec a;
  a.mode = data::parse_augment_mode(c.augment);
  a.pad = c.crop_padding;
  a.pad_mode = data::parse_pad_mode(c.pad_mode);
  a.cutout = c.cutout;
  return a;
}

}  // namespace


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
  if (!config.eval_only) {  // --eval-only reads no training set (launch/app/main.cpp)
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
    if (config.eval_only) return;  // no gradients to reduce
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
    // Nothing at all under that name means a fresh start; anything else (a symbolic link to a
    // missing file, say) goes to the loader, which says what is wrong with it.
    std::error_code ec;
    if (std::filesystem::symlink_status(file, ec).type() == std::filesystem::file_type::not_found) {
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

}  // namespace dt::trainer
