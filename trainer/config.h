// The one typed configuration of a run. launch/app/cli.cpp fills it from the command line (every flag
// declared once there, with its default and help); everything else only reads it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt::trainer {

struct Config {
  // Data
  std::string data_dir;       // CIFAR-10 binary folder; empty when synthetic
  int64_t synthetic = 0;      // > 0: train on this many synthetic images instead
  std::string augment = "seed";
  int64_t crop_padding = 4;
  std::string pad_mode = "zero";
  int64_t cutout = 0;         // side of the square cut out of each training image (0: none)
  bool drop_last = true;

  // Model and optimisation
  std::string model = "resnet14";
  int64_t epochs = 10;
  int64_t batch_size = 30;    // per rank
  std::string optimizer = "adam";
  double lr = 1e-3;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::string lr_schedule = "constant";
  double warmup_epochs = 0.0;
  double lr_step_epochs = 30.0;
  std::vector<double> lr_milestones;  // step: drop at these epochs instead of every lr_step_epochs
  double lr_gamma = 0.1;
  double label_smoothing = 0.0;

  // Execution
  std::string device = "auto";
  uint64_t seed = 0;
  int64_t threads = 0;        // 0: LibTorch's default
  int64_t max_steps = 0;      // 0: no limit
  std::string channels_last = "auto";
  std::string cpu_conv = "auto";   // auto (Winograd where it applies, model/conv3x3.h) | direct
  std::string precision = "fp32";  // fp32 | bf16 (autocast, fp32 master weights) | fp64 (verification)
  int64_t eval_batch = 1000;
  int64_t eval_every = 1;  // epochs between evaluations; 0: never
  std::string eval_tta = "none";  // none | flip: score each test image with its mirror image too

  // Distribution
  double bucket_mb = 25.0;
  int64_t accumulate = 1;
  bool overlap = true;
  std::string sync_bn = "auto";  // auto: on when the world size is above 1
  double comm_timeout_s = 600.0;

  // Outputs
  std::string log_dir = "runs";
  std::string checkpoint_dir = "checkpoints";
  int64_t log_every = 100;
  std::string eval_mode = "rank0";      // rank0 | distributed
  std::string resume;                   // "" | auto | PATH
  bool eval_only = false;               // evaluate the --resume checkpoint, train nothing
  int64_t checkpoint_every = 0;         // also keep epoch_N.pt every N epochs (0: no)
  int64_t keep = 0;                     // epoch_N.pt files kept (0: all)
  int64_t checkpoint_every_steps = 0;   // also write last.pt every N steps (0: no)
  bool skip_nonfinite = false;
  std::string trace;                    // Chrome trace JSON path ("" : none)
  int64_t verify_every = 500;           // replica-consistency check every N steps (0: off)
  bool deterministic = false;           // deterministic kernels (cuDNN), fixed reduction order
  bool cudnn_benchmark = true;          // cuDNN autotuning (off under --deterministic)
  bool cuda_graph = false;              // capture the step once, replay it (trainer/graphed_step.h)
};

// Throws ConfigError (one line) for any out-of-range or inconsistent value.
void validate(const Config& config);

// "82,123": how lists print in the config, its hash and error messages.
std::string join(const std::vector<double>& values);

// Canonical "key = value" lines: printed by rank 0, compared across ranks by their hash
// (launch/app/main.cpp), stored in checkpoints.
std::string to_string(const Config& config);

}  // namespace dt::trainer
