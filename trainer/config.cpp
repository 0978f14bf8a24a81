#include "trainer/config.h"

#include <sstream>
#include "trainer/errors.h"

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

bool one_of(const std::string& v, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (v == o) return true;
  }
  return false;
}

}  // namespace

std::string join(const std::vector<double>& values) {
  std::ostringstream o;
  o.precision(17);
  for (size_t i = 0; i < values.size(); ++i) o << (i ? "," : "") << values[i];
  return o.str();
}

void validate(const Config& c) {
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
  require(c.lr_schedule != "step" || !c.lr_milestones.empty() || c.lr_step_epochs > c.warmup_epochs,
          "--lr-step-epochs must be > --warmup-epochs (a drop inside the warm-up is lost in it)");
  require(c.lr_milestones.empty() || c.lr_schedule == "step",
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
  require(one_of(c.optimizer, {"sgd", "adam"}),
          "--optimizer must be sgd or adam, got '" + c.optimizer + "'");
  require(!c.nesterov || c.optimizer == "sgd", "--nesterov needs --optimizer sgd");
  require(!c.nesterov || c.momentum > 0, "--nesterov needs --momentum > 0");
  require(one_of(c.lr_schedule, {"constant", "step", "cosine", "linear", "onecycle"}),
          "--lr-schedule must be constant, step, cosine, linear or onecycle, got '" +
              c.lr_schedule + "'");
  require(one_of(c.device, {"auto", "cuda", "cpu"}),
          "--device must be auto, cuda or cpu, got '" + c.device + "'");
  require(one_of(c.channels_last, {"auto", "on", "off"}),
          "--channels-last must be auto, on or off, got '" + c.channels_last + "'");
  require(one_of(c.cpu_conv, {"auto", "direct"}),
          "--cpu-conv must be auto or direct, got '" + c.cpu_conv + "'");
  require(one_of(c.sync_bn, {"auto", "on", "off"}), "--sync-bn and --no-sync-bn exclude each other (got " + c.sync_bn + ")");
  require(one_of(c.precision, {"fp32", "bf16", "fp64"}),
          "--precision must be fp32, bf16 or fp64, got '" + c.precision + "'");
  require(c.cutout >= 0 && c.cutout <= 32,
          "--cutout must be in [0, 32] pixels, got " + std::to_string(c.cutout));
  require(c.threads >= 0 && c.threads <= kMaxThreads,
          "--threads must be in [0, " + std::to_string(kMaxThreads) + "], got " + std::to_string(c.threads));
  require(c.max_steps >= 0, "--max-steps must be >= 0");
  require(c.synthetic >= 0 && c.synthetic <= kMaxSynthetic,
          "--synthetic must be in [0, " + std::to_string(kMaxSynthetic) + "] images");
  require(c.eval_batch >= 1 && c.eval_batch <= kMaxBatch,
          "--eval-batch must be in [1, " + std::to_string(kMaxBatch) + "]");
  require(c.eval_every >= 0, "--eval-every must be >= 0");
  require(one_of(c.eval_tta, {"none", "flip"}),
          "--eval-tta must be none or flip, got '" + c.eval_tta + "'");
  // Without a checkpoint there is nothing to evaluate but a freshly initialised network.
  require(!c.eval_only || !c.resume.empty(),
          "--eval-only needs --resume (a checkpoint's path, or auto for CHECKPOINT_DIR/last.pt)");
  require(c.bucket_mb > 0 && c.bucket_mb <= 65536, "--bucket-mb must be in (0, 65536]");
  require(c.accumulate >= 1 && c.accumulate <= kMaxBatch,
          "--accumulate must be in [1, " + std::to_string(kMaxBatch) + "]");
  // Below a millisecond the deadline rounds to zero; above 1e6 s (11 days) it is a typo.
  require(c.comm_timeout_s >= 1e-3 && c.comm_timeout_s <= 1e6,
          "--comm-timeout must be in [0.001, 1e6] seconds");
  require(c.log_every >= 1, "--log-every must be >= 1");
  require(!c.log_dir.empty(), "--log-dir must not be empty (use . for the current folder)");
  require(!c.checkpoint_dir.empty(), "--checkpoint-dir must not be empty (use . for the current folder)");
  require(one_of(c.eval_mode, {"rank0", "distributed"}),
          "--eval must be rank0 or distributed, got '" + c.eval_mode + "'");
  require(c.checkpoint_every >= 0, "--checkpoint-every must be >= 0");
  require(c.keep >= 0, "--keep must be >= 0");
  require(c.verify_every >= 0, "--verify-every must be >= 0");
  require(c.checkpoint_every_steps >= 0, "--checkpoint-every-steps must be >= 0");
  // A captured step is one micro-batch whose update the host cannot veto (trainer/graphed_step.h).
  require(!c.cuda_graph || c.device != "cpu", "--cuda-graph needs a GPU, not --device cpu");
  require(!c.cuda_graph || c.accumulate == 1, "--cuda-graph and --accumulate " +
                                                  std::to_string(c.accumulate) +
                                                  " exclude each other (the graph holds one micro-batch)");
  require(!c.cuda_graph || !c.skip_nonfinite,
          "--cuda-graph and --skip-nonfinite exclude each other (the update is inside the graph)");
}

std::string to_string(const Config& c) {
  std::ostringstream o;
  o.precision(17);
  o << "data = " << (c.synthetic > 0 ? "synthetic" : c.data_dir) << "\n"
    << "synthetic = " << c.synthetic << "\n"
    << "augment = " << c.augment << "\n"
    << "crop_padding = " << c.crop_padding << "\n"
    << "pad_mode = " << c.pad_mode << "\n"
    << "cutout = " << c.cutout << "\n"
    << "drop_last = " << c.drop_last << "\n"
    << "model = " << c.model << "\n"
    << "epochs = " << c.epochs << "\n"
    << "batch_size = " << c.batch_size << "\n"
    << "optimizer = " << c.optimizer << "\n"
    << "lr = " << c.lr << "\n"
    << "momentum = " << c.momentum << "\n"
    << "nesterov = " << c.nesterov << "\n"
    << "weight_decay = " << c.weight_decay << "\n"
    << "lr_schedule = " << c.lr_schedule << "\n"
    << "warmup_epochs = " << c.warmup_epochs << "\n"
    << "lr_step_epochs = " << c.lr_step_epochs << "\n"
    << "lr_milestones = " << join(c.lr_milestones) << "\n"
    << "lr_gamma = " << c.lr_gamma << "\n"
    << "label_smoothing = " << c.label_smoothing << "\n"
    << "device = " << c.device << "\n"
    << "seed = " << c.seed << "\n"
    << "threads = " << c.threads << "\n"
    << "max_steps = " << c.max_steps << "\n"
    << "channels_last = " << c.channels_last << "\n"
    << "cpu_conv = " << c.cpu_conv << "\n"
    << "precision = " << c.precision << "\n"
    << "eval_batch = " << c.eval_batch << "\n"
    << "eval_every = " << c.eval_every << "\n"
    << "eval_tta = " << c.eval_tta << "\n"
    << "bucket_mb = " << c.bucket_mb << "\n"
    << "accumulate = " << c.accumulate << "\n"
    << "overlap = " << c.overlap << "\n"
    << "sync_bn = " << c.sync_bn << "\n"
    << "comm_timeout_s = " << c.comm_timeout_s << "\n"
    << "log_dir = " << c.log_dir << "\n"
    << "checkpoint_dir = " << c.checkpoint_dir << "\n"
    << "log_every = " << c.log_every << "\n"
    << "eval_mode = " << c.eval_mode << "\n"
    << "resume = " << c.resume << "\n"
    << "eval_only = " << c.eval_only << "\n"
    << "checkpoint_every = " << c.checkpoint_every << "\n"
    << "keep = " << c.keep << "\n"
    << "checkpoint_every_steps = " << c.checkpoint_every_steps << "\n"
    << "skip_nonfinite = " << c.skip_nonfinite << "\n"
    << "trace = " << c.trace << "\n"
    << "verify_every = " << c.verify_every << "\n"
    << "deterministic = " << c.deterministic << "\n"
    << "cudnn_benchmark = " << c.cudnn_benchmark << "\n"
    << "cuda_graph = " << c.cuda_graph << "\n";
  return o.str();
}


}  // namespace dt::trainer
