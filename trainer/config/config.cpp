#include "trainer/config/config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include "trainer/config/config_fields.h"
#include "trainer/config/errors.h"

namespace dt::trainer {
namespace {

constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxBatch = int64_t(1) << 20;
// 2 M images: 6 GB of uint8 training images plus a test set of a fifth of that; beyond it an
// allocation failure would be the answer, not a one-line error.
constexpr int64_t kMaxSynthetic = 2000000;
// Far above any machine's cores; a typo (or 2^32, which wraps to 0 in LibTorch's int) is refused
// instead of crashing OpenMP.
constexpr int64_t kMaxThreads = 4096;

void require(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

// Prints each row of config_fields.h as "key = value"; a field set by several flags
// (--sync-bn, --no-sync-bn) prints once.
class Printer {
 public:
  explicit Printer(const Config& c) : c_(c) {}
  template <class T>
  void value(const std::string&, const std::string&, const std::string& key, T Config::*field,
             const std::string&) {
    if constexpr (std::is_same_v<T, std::string>) {
      // Synthetic runs have no folder; the line says where the images came from.
      if (field == &Config::data_dir && c_.synthetic > 0) return line(key, "synthetic");
    }
    line(key, value_text(c_.*field));
  }
  void enable(const std::string& g, const std::string& f, const std::string& key,
              bool Config::*field, const std::string& h) {
    value(g, f, key, field, h);
  }
  void disable(const std::string& g, const std::string& f, const std::string& key,
               bool Config::*field, const std::string& h) {
    value(g, f, key, field, h);
  }
  template <class T>
  void setting(const std::string& g, const std::string& f, const std::string& key, T Config::*field,
               T, const std::string& h) {
    value(g, f, key, field, h);
  }
  std::string text() const { return out_; }

 private:
  void line(const std::string& key, const std::string& value) {
    if (printed_.insert(key).second) out_ += key + " = " + value + "\n";
  }
  const Config& c_;
  std::set<std::string> printed_;
  std::string out_;
};

}  // namespace

std::string shortest(double value) {
  char buffer[64];
  // Whole numbers as such ("600", not "6e+02"), as the configuration always printed them.
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
    return buffer;
  }
  // The fewest significant digits that read back as the same double, in %g's plain form
  // ("0.0005", "1e-10").
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

std::string join(const std::vector<double>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + shortest(values[i]);
  return out;
}

namespace {

// Training length, batch and the optimizer with its schedule.
void validate_optimisation(const Config& c) {
  // Upper bounds keep the step and sample arithmetic (epochs x steps, batch x world) far from
  // int64 overflow, and turn a typo into an error rather than a silent no-op or a huge allocation.
  require(c.epochs >= 1 && c.epochs <= kMaxEpochs,
          "--epochs must be in [1, " + std::to_string(kMaxEpochs) + "], got " +
              std::to_string(c.epochs));
  require(c.batch_size >= 1 && c.batch_size <= kMaxBatch,
          "--batch-size must be in [1, " + std::to_string(kMaxBatch) + "], got " +
              std::to_string(c.batch_size));
  require(c.lr > 0, "--lr must be > 0, got " + std::to_string(c.lr));
  require(c.momentum >= 0 && c.momentum < 1, "--momentum must be in [0, 1)");
  require(c.weight_decay >= 0, "--weight-decay must be >= 0");
  require(c.label_smoothing >= 0 && c.label_smoothing < 1, "--label-smoothing must be in [0, 1)");
  require(c.warmup_epochs >= 0 && c.warmup_epochs <= c.epochs,
          "--warmup-epochs must be in [0, --epochs]");
  require(c.lr_step_epochs > 0, "--lr-step-epochs must be > 0");
  // Drops are at multiples of --lr-step-epochs from epoch 0; any inside the warm-up would all
  // land at once when it ends (as --lr-milestones must lie after it, below).
  require(c.lr_schedule != ScheduleKind::Step || !c.lr_milestones.empty() || c.lr_step_epochs > c.warmup_epochs,
          "--lr-step-epochs must be > --warmup-epochs (a drop inside the warm-up is lost in it)");
  require(c.lr_milestones.empty() || c.lr_schedule == ScheduleKind::Step,
          "--lr-milestones needs --lr-schedule step");
  for (size_t i = 0; i < c.lr_milestones.size(); ++i) {
    const double m = c.lr_milestones[i];
    require(m > c.warmup_epochs && m < double(c.epochs),
            "--lr-milestones: " + join(c.lr_milestones) +
                " has an epoch outside (--warmup-epochs, --epochs)");
    require(i == 0 || m > c.lr_milestones[i - 1],
            "--lr-milestones: " + join(c.lr_milestones) + " is not increasing");
  }
  require(c.lr_gamma > 0 && c.lr_gamma <= 1, "--lr-gamma must be in (0, 1]");
  require(!c.nesterov || c.optimizer == OptimizerKind::Sgd, "--nesterov needs --optimizer sgd");
  require(!c.nesterov || c.momentum > 0, "--nesterov needs --momentum > 0");
}

void validate_data(const Config& c) {
  // The largest padding the augmentation's crop geometry supports (data/augment.h).
  require(c.crop_padding >= 0 && c.crop_padding <= 16,
          "--crop-padding must be in [0, 16] pixels, got " + std::to_string(c.crop_padding));
  require(c.cutout >= 0 && c.cutout <= 32,
          "--cutout must be in [0, 32] pixels, got " + std::to_string(c.cutout));
}

void validate_execution(const Config& c) {
  require(c.threads >= 0 && c.threads <= kMaxThreads,
          "--threads must be in [0, " + std::to_string(kMaxThreads) + "], got " + std::to_string(c.threads));
  require(c.max_steps >= 0, "--max-steps must be >= 0");
  require(c.synthetic >= 0 && c.synthetic <= kMaxSynthetic,
          "--synthetic must be in [0, " + std::to_string(kMaxSynthetic) + "] images");
  require(c.eval_batch >= 1 && c.eval_batch <= kMaxBatch,
          "--eval-batch must be in [1, " + std::to_string(kMaxBatch) + "]");
  require(c.eval_every >= 0, "--eval-every must be >= 0");
  // Without a checkpoint there is nothing to evaluate but a freshly initialised network.
  require(!c.eval_only || !c.resume.empty(),
          "--eval-only needs --resume (a checkpoint's path, or auto for CHECKPOINT_DIR/last.pt)");
}

void validate_distribution(const Config& c) {
  require(c.bucket_mb > 0 && c.bucket_mb <= 65536, "--bucket-mb must be in (0, 65536]");
  require(c.sync_bn_group == "world" || c.sync_bn_group == "node" ||
              (!c.sync_bn_group.empty() && c.sync_bn_group.size() <= 7 &&
               c.sync_bn_group.find_first_not_of("0123456789") == std::string::npos &&
               std::stol(c.sync_bn_group) >= 1),
          "--sync-bn-group must be world, node or a number of ranks >= 1, got '" +
              c.sync_bn_group + "'");
  require(c.accumulate >= 1 && c.accumulate <= kMaxBatch,
          "--accumulate must be in [1, " + std::to_string(kMaxBatch) + "]");
  // G / accumulate is the global micro-batch, whatever the world size (launch/app/global_batch.h).
  require(c.global_batch_size >= 0 && c.global_batch_size <= kMaxBatch,
          "--global-batch-size must be in [0, " + std::to_string(kMaxBatch) + "], got " +
              std::to_string(c.global_batch_size));
  require(c.global_batch_size % c.accumulate == 0,
          "--global-batch-size " + std::to_string(c.global_batch_size) + " is not a multiple of "
          "--accumulate " + std::to_string(c.accumulate) + " (each micro-batch takes G / accumulate)");
  // Below a millisecond the deadline rounds to zero; above 1e6 s (11 days) it is a typo.
  require(c.comm_timeout_s >= 1e-3 && c.comm_timeout_s <= 1e6,
          "--comm-timeout must be in [0.001, 1e6] seconds");
}

void validate_outputs(const Config& c) {
  require(c.log_every >= 1, "--log-every must be >= 1");
  require(!c.log_dir.empty(), "--log-dir must not be empty (use . for the current folder)");
  require(!c.checkpoint_dir.empty(), "--checkpoint-dir must not be empty (use . for the current folder)");
  require(c.checkpoint_every >= 0, "--checkpoint-every must be >= 0");
  require(c.keep >= 0, "--keep must be >= 0");
  require(c.verify_every >= 0, "--verify-every must be >= 0");
  require(c.checkpoint_every_steps >= 0, "--checkpoint-every-steps must be >= 0");
}

// A captured step is one micro-batch whose update the host cannot veto (trainer/loop/graphed_step.h).
void validate_cuda_graph(const Config& c) {
  require(!c.cuda_graph || c.device != DeviceChoice::Cpu, "--cuda-graph needs a GPU, not --device cpu");
  require(!c.cuda_graph || c.accumulate == 1, "--cuda-graph and --accumulate " +
                                                  std::to_string(c.accumulate) +
                                                  " exclude each other (the graph holds one micro-batch)");
  require(!c.cuda_graph || !c.skip_nonfinite,
          "--cuda-graph and --skip-nonfinite exclude each other (the update is inside the graph)");
}

}  // namespace

void validate(const Config& c) {
  validate_optimisation(c);
  validate_data(c);
  validate_execution(c);
  validate_distribution(c);
  validate_outputs(c);
  validate_cuda_graph(c);
}

std::string to_string(const Config& c) {
  Printer printer(c);
  declare_config_fields(printer, c.model);  // the model list only feeds help texts
  return printer.text();
}

}  // namespace dt::trainer
