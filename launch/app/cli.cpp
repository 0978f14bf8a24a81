#include "launch/app/cli.h"

#include <cxxopts.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <tuple>
#include <vector>
#include "data/cifar10.h"
#include "model/network.h"
#include "trainer/errors.h"

namespace dt::launch {
namespace {

using trainer::Config;
using trainer::ConfigError;
using Reader = std::function<void(const cxxopts::ParseResult&, Config&)>;

template <typename T>
std::string text(const T& v) {
  if constexpr (std::is_same_v<T, std::vector<double>>) {
    return trainer::join(v);
  } else {
    std::ostringstream o;
    o << v;
    return o.str();
  }
}

// Strict conversion: the whole text must be a value of T ("3x", "1e" and "-1" for unsigned fail).
template <typename T>
T convert(const std::string& flag, const std::string& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    std::vector<double> out;  // comma-separated numbers; "" is the empty list
    std::istringstream items(value);
    for (std::string item; std::getline(items, item, ',');) out.push_back(convert<double>(flag, item));
    if (!value.empty() && value.back() == ',') convert<double>(flag, "");  // "82," is a typo
    return out;
  } else {
    T out{};
    std::istringstream in(value);
    const bool negative_unsigned = std::is_unsigned_v<T> && value.find('-') != std::string::npos;
    if (value.empty() || negative_unsigned || !(in >> out) || !in.eof()) {
      throw ConfigError("--" + flag + ": '" + value + "' is not " +
                        (std::is_integral_v<T> ? "an integer" : "a number"));
    }
    return out;
  }
}

// Declares each flag once: name, help, the Config field it fills, default from Config{}.
class FlagTable {
 public:
  explicit FlagTable(cxxopts::Options& options) : options_(options) {}

  template <typename T>
  void value(const std::string& group, const std::string& name, T Config::*field,
             const std::string& help) {
    // Parsed as text here and converted by convert<T>, so a bad value names its flag.
    options_.add_options(group)(name, help,
                                cxxopts::value<std::string>()->default_value(text(defaults_.*field)));
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      // Given twice, the last one wins (so a wrapper's defaults can be overridden after them);
      // the resolved configuration that rank 0 prints shows which.
      c.*field = convert<T>(name, r[name].as<std::string>());
    });
  }

  // --name turns a default-off feature on.
  void enable(const std::string& group, const std::string& name, bool Config::*field,
              const std::string& help) {
    options_.add_options(group)(name, help + " (default: off)");
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      if (given(r, name)) c.*field = true;
    });
  }

  // --name turns a default-on feature off.
  void disable(const std::string& group, const std::string& name, bool Config::*field,
               const std::string& help) {
    options_.add_options(group)(name, help);
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      if (given(r, name)) c.*field = false;
    });
  }

  // --name sets a string field to `value`; a second such flag for the same field is an error.
  void setting(const std::string& group, const std::string& name, std::string Config::*field,
               const std::string& value, const std::string& help) {
    options_.add_options(group)(name, help);
    readers_.push_back([name, field, value, initial = defaults_.*field](
                           const cxxopts::ParseResult& r, Config& c) {
      if (!given(r, name)) return;
      c.*field = c.*field == initial ? value : "conflict";
    });
  }

  // Whether a switch was given. cxxopts also accepts "--switch=false", which its count alone
  // would read as the switch turned on: refused, as any value but the implicit one.
  static bool given(const cxxopts::ParseResult& r, const std::string& name) {
    if (!r.count(name)) return false;
    if (!r[name].as<bool>()) {
      throw ConfigError("--" + name + " takes no value (leave it out for the default)");
    }
    return true;
  }

  void read(const cxxopts::ParseResult& r, Config& c) const {
    for (const auto& f : readers_) f(r, c);
  }

 private:
  cxxopts::Options& options_;
  Config defaults_;
  std::vector<Reader> readers_;
};

std::string model_names() {
  std::string s;
  for (const auto& name : model::model_names()) s += (s.empty() ? "" : "|") + name;
  return s;
}

}  // namespace

CliResult parse_cli(int argc, const char* const* argv) {
  cxxopts::Options options("dist_train",
                           "Data-parallel ResNet training on CIFAR-10 (LibTorch, NCCL, MPI).\n"
                           "Launch one process per GPU with mpirun/srun, or run alone.");
  FlagTable f(options);
  f.value("Data", "data", &Config::data_dir,
          "CIFAR-10 binary folder (default: $CIFAR10_DIR, then data/cifar-10-batches-bin)");
  f.value("Data", "synthetic", &Config::synthetic,
          "train on N synthetic images instead of CIFAR-10 (0: real data when found)");
  f.value("Data", "augment", &Config::augment, "augmentation: seed|standard|none");
  f.value("Data", "crop-padding", &Config::crop_padding, "padding before the random crop (standard)");
  f.value("Data", "pad-mode", &Config::pad_mode, "crop padding: zero|reflect");
  f.value("Data", "cutout", &Config::cutout,
          "set a random NxN square of each training image to the mean (0: off)");
  f.disable("Data", "no-drop-last", &Config::drop_last,
            "pad the epoch's last global batch by wrapping instead of dropping it");

  f.value("Model and optimisation", "model", &Config::model, "model: " + model_names());
  f.value("Model and optimisation", "epochs", &Config::epochs, "epochs to train");
  f.value("Model and optimisation", "batch-size", &Config::batch_size, "batch size per rank");
  f.value("Model and optimisation", "optimizer", &Config::optimizer, "optimizer: sgd|adam");
  f.value("Model and optimisation", "lr", &Config::lr, "learning rate (not scaled by world size)");
  f.value("Model and optimisation", "momentum", &Config::momentum, "SGD momentum");
  f.enable("Model and optimisation", "nesterov", &Config::nesterov, "Nesterov momentum (SGD)");
  f.value("Model and optimisation", "weight-decay", &Config::weight_decay, "L2 weight decay");
  f.value("Model and optimisation", "lr-schedule", &Config::lr_schedule,
          "LR schedule: constant|step|cosine|linear (to 0)|onecycle");
  f.value("Model and optimisation", "warmup-epochs", &Config::warmup_epochs,
          "linear warm-up epochs from 0 (onecycle: its own ramp; 0 means 30% of the run)");
  f.value("Model and optimisation", "lr-step-epochs", &Config::lr_step_epochs,
          "step schedule: epochs between LR drops");
  f.value("Model and optimisation", "lr-milestones", &Config::lr_milestones,
          "step schedule: drop the LR at these epochs instead, e.g. 82,123 (He et al.)");
  f.value("Model and optimisation", "lr-gamma", &Config::lr_gamma, "step schedule: LR factor per drop");
  f.value("Model and optimisation", "label-smoothing", &Config::label_smoothing,
          "label smoothing of the cross-entropy loss");

  f.value("Execution", "device", &Config::device, "device: auto|cuda|cpu");
  f.value("Execution", "seed", &Config::seed, "seed of weights, shuffling and augmentation");
  f.value("Execution", "threads", &Config::threads, "intra-op CPU threads (0: LibTorch default)");
  f.value("Execution", "max-steps", &Config::max_steps, "stop once N optimizer steps are done in all, a resumed checkpoint's included (0: no limit)");
  f.value("Execution", "channels-last", &Config::channels_last, "NHWC memory format: auto|on|off");
  f.value("Execution", "cpu-conv", &Config::cpu_conv,
          "CPU 3x3 convolutions: auto (Winograd F(4x4,3x3) for fp32 stride-1 layers on AVX-512 "
          "CPUs, LibTorch's oneDNN elsewhere) | direct (always LibTorch)");
  f.value("Execution", "precision", &Config::precision,
          "fp32 | bf16 (autocast: bf16 convolutions and linear layers; fp32 weights, gradients, "
          "optimizer state and BatchNorm statistics) | fp64 (verification)");
  f.value("Execution", "eval-batch", &Config::eval_batch, "evaluation batch size");
  f.value("Execution", "eval-every", &Config::eval_every,
          "evaluate the test set every N epochs (0: never)");
  f.value("Execution", "eval-tta", &Config::eval_tta,
          "test-time augmentation: none | flip (average the logits of each test image and its "
          "mirror image)");

  f.value("Distribution", "bucket-mb", &Config::bucket_mb, "gradient bucket cap in MB");
  f.value("Distribution", "accumulate", &Config::accumulate,
          "micro-batches per optimizer step (gradient accumulation)");
  f.disable("Distribution", "no-overlap", &Config::overlap,
            "all-reduce gradients after backward instead of during it (for A/B timing)");
  f.setting("Distribution", "sync-bn", &Config::sync_bn, "on",
            "synchronise BatchNorm statistics across ranks (default: on when world size > 1)");
  f.setting("Distribution", "no-sync-bn", &Config::sync_bn, "off",
            "per-rank BatchNorm statistics even when world size > 1");
  f.value("Distribution", "comm-timeout", &Config::comm_timeout_s,
          "deadline in seconds for any collective");

  f.value("Outputs", "log-dir", &Config::log_dir, "TensorBoard events and metrics.jsonl");
  f.value("Outputs", "checkpoint-dir", &Config::checkpoint_dir, "checkpoints (rank 0 writes)");
  f.value("Outputs", "log-every", &Config::log_every, "log the training loss every N steps");
  f.value("Outputs", "eval", &Config::eval_mode,
          "who evaluates: rank0 (others wait) | distributed (a shard each, reduced)");
  f.value("Outputs", "resume", &Config::resume,
          "resume from a checkpoint: auto (CHECKPOINT_DIR/last.pt if present) or a path");
  f.enable("Outputs", "eval-only", &Config::eval_only,
           "evaluate the --resume checkpoint on the test set, print the result as one JSON line "
           "on stdout, and exit without training");
  f.value("Outputs", "checkpoint-every", &Config::checkpoint_every,
          "also keep epoch_N.pt every N epochs (0: only last.pt and best.pt)");
  f.value("Outputs", "keep", &Config::keep, "how many epoch_N.pt to keep (0: all)");
  f.value("Outputs", "checkpoint-every-steps", &Config::checkpoint_every_steps,
          "also write last.pt every N steps, mid-epoch (0: only at epoch ends)");
  f.value("Outputs", "trace", &Config::trace,
          "write a Chrome trace (chrome://tracing, Perfetto) of every rank's steps to FILE");
  f.value("Distribution", "verify-every", &Config::verify_every,
          "compare checksums of every replica's parameters, buffers and optimizer state across "
          "ranks every N steps and at every checkpoint (0: off)");
  f.enable("Execution", "deterministic", &Config::deterministic,
           "deterministic algorithms (cuDNN included): same seed and world size, same bits");
  f.disable("Execution", "no-cudnn-benchmark", &Config::cudnn_benchmark,
            "do not autotune cuDNN convolution algorithms (always off with --deterministic)");
  f.enable("Execution", "cuda-graph", &Config::cuda_graph,
           "capture the whole training step (forward, backward, update) as a CUDA graph after 3 "
           "warm-up steps and replay it (one GPU, world size 1, no --accumulate or "
           "--skip-nonfinite)");
  f.enable("Execution", "skip-nonfinite", &Config::skip_nonfinite,
           "skip (and count) updates whose loss is NaN/Inf instead of stopping the run (reads the loss "
           "every step: a host sync on GPU)");
  options.add_options("Help")("h,help", "print this help and exit");

  CliResult out;
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
    if (!r.unmatched().empty()) {
      throw ConfigError("unexpected argument '" + r.unmatched().front() + "' (see --help)");
    }
    f.read(r, out.config);
  } catch (const cxxopts::exceptions::exception& e) {
    throw ConfigError(std::string(e.what()) + " (see --help)");
  }
  if (FlagTable::given(r, "help")) {
    out.help = true;
    out.help_text = options.help();
    return out;
  }
  out.data_defaulted = r.count("data") == 0;
  try {
    model::require_known_model(out.config.model);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("--model: ") + e.what());
  }
  trainer::validate(out.config);
  // A flag given explicitly that this run would ignore is a mistake about the run (a typo in
  // another flag, a misremembered default), not a harmless no-op.
  const auto& c = out.config;
  const bool step = c.lr_schedule == "step", standard = c.augment == "standard";
  const std::vector<std::tuple<std::string, bool, std::string>> applies = {
      {"momentum", c.optimizer == "sgd", "--optimizer sgd"},
      {"lr-gamma", step, "--lr-schedule step"},
      {"lr-step-epochs", step && c.lr_milestones.empty(), "--lr-schedule step without --lr-milestones"},
      {"crop-padding", standard, "--augment standard"},
      {"pad-mode", standard && c.crop_padding > 0, "--augment standard and --crop-padding > 0"},
      {"keep", c.checkpoint_every > 0, "--checkpoint-every N"},
      {"eval-tta", c.eval_only || c.eval_every > 0, "--eval-every > 0 or --eval-only"},
  };
  for (const auto& [flag, used, where] : applies) {
    if (!used && r.count(flag) > 0) {
      throw ConfigError("--" + flag + " applies with " + where + " only: this run would ignore it");
    }
  }
  return out;
}

std::string resolve_data_source(CliResult& cli, int64_t synthetic_default) {
  auto& c = cli.config;
  // --eval-only reads the test split alone (launch/app/main.cpp).
  const std::string use = c.eval_only ? "evaluating on " : "training on ";
  if (c.synthetic > 0) {
    if (!cli.data_defaulted) {  // one of them would be ignored
      throw ConfigError("--data and --synthetic exclude each other (got --data " + c.data_dir + ")");
    }
    c.data_dir.clear();
    return use + std::to_string(c.synthetic) + " synthetic images (--synthetic)";
  }
  if (!cli.data_defaulted) {
    std::error_code ec;
    if (!std::filesystem::is_directory(c.data_dir, ec)) {
      throw ConfigError("--data " + c.data_dir + ": no such directory");
    }
    return use + "CIFAR-10 from " + c.data_dir;
  }
  if (const char* env = std::getenv("CIFAR10_DIR"); env && *env) {
    // An explicit environment setting that points nowhere is a mistake, not a request for
    // synthetic data.
    if (!data::cifar10_present(env, c.eval_only)) {
      throw ConfigError(std::string("CIFAR10_DIR=") + env +
                        (c.eval_only ? " does not hold test_batch.bin"
                                     : " does not hold data_batch_1..5.bin and test_batch.bin"));
    }
    c.data_dir = env;
    return use + "CIFAR-10 from " + c.data_dir + " ($CIFAR10_DIR)";
  }
  if (data::cifar10_present("data/cifar-10-batches-bin", c.eval_only)) {
    c.data_dir = "data/cifar-10-batches-bin";
    return use + "CIFAR-10 from " + c.data_dir;
  }
  if (c.eval_only) {  // scoring a checkpoint on stand-in images would be a silent wrong result
    throw ConfigError("--eval-only: no CIFAR-10 test set found ($CIFAR10_DIR unset, no "
                      "data/cifar-10-batches-bin); give --data DIR (or --synthetic N)");
  }
  c.synthetic = synthetic_default;
  c.data_dir.clear();
  return "no CIFAR-10 found ($CIFAR10_DIR unset or incomplete, no data/cifar-10-batches-bin): "
         "training on " + std::to_string(synthetic_default) +
         " synthetic images instead; get the real data with launch/scripts/get_cifar10.sh";
}

}  // namespace dt::launch
