// The one typed configuration of a run. Every field is declared once, with its flag, help text
// and key, in trainer/config/config_fields.h: launch/app/cli.cpp fills the struct from the command line
// through that table, and to_string prints it through the same table. Choices are enums, parsed
// at the edge (their names: the EnumNames lists below); everything else only reads them.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include "common/enum_names.h"
#include "data/augment_mode.h"
#include "data/normalization.h"

namespace dt::trainer {

enum class OptimizerKind { Sgd, Adam };
enum class ScheduleKind { Constant, Step, Cosine, Linear, OneCycle };
enum class DeviceChoice { Auto, Cuda, Cpu };
enum class Toggle { Auto, On, Off };  // auto: the run decides (channels_last, SyncBatchNorm)
enum class CpuConv { Auto, Direct };
enum class Precision { Fp32, Bf16, Fp64 };
enum class EvalMode { Rank0, Distributed };
enum class EvalTta { None, Flip };

struct Config {
  // Data
  std::string data_dir;       // CIFAR-10 binary folder; empty when synthetic
  int64_t synthetic = 0;      // > 0: train on this many synthetic images instead
  data::AugmentMode augment = data::AugmentMode::Seed;
  // auto: resolved at parse time for training runs (launch/app/cli.cpp), so the printed and
  // stored configuration names the one used; --eval-only keeps it until the checkpoint is read.
  data::Normalization normalize = data::Normalization::Auto;
  int64_t crop_padding = 4;
  data::PadMode pad_mode = data::PadMode::Zero;
  int64_t cutout = 0;         // side of the square cut out of each training image (0: none)
  bool drop_last = true;

  // Model and optimisation
  std::string model = "resnet14";
  int64_t epochs = 10;
  int64_t batch_size = 30;    // per rank (a micro-batch, with --accumulate)
  // Images per optimizer step over all ranks; 0: not given (--batch-size decides). launch/app/
  // resolves batch_size to G / (world size x accumulate) before the configuration is compared,
  // so a resume on another world size keeps G and so the sequence of steps.
  int64_t global_batch_size = 0;
  OptimizerKind optimizer = OptimizerKind::Adam;
  double lr = 1e-3;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  ScheduleKind lr_schedule = ScheduleKind::Constant;
  double warmup_epochs = 0.0;
  double lr_step_epochs = 30.0;
  std::vector<double> lr_milestones;  // step: drop at these epochs instead of every lr_step_epochs
  double lr_gamma = 0.1;
  double label_smoothing = 0.0;

  // Execution
  DeviceChoice device = DeviceChoice::Auto;
  uint64_t seed = 0;
  int64_t threads = 0;        // 0: LibTorch's default
  int64_t max_steps = 0;      // 0: no limit
  Toggle channels_last = Toggle::Auto;
  CpuConv cpu_conv = CpuConv::Auto;  // auto: Winograd where it applies (model/conv3x3.h)
  Precision precision = Precision::Fp32;  // bf16: autocast, fp32 master weights; fp64: verification
  int64_t eval_batch = 1000;
  int64_t eval_every = 1;  // epochs between evaluations; 0: never
  EvalTta eval_tta = EvalTta::None;  // flip: score each test image with its mirror image too

  // Distribution
  double bucket_mb = 25.0;
  int64_t accumulate = 1;
  bool overlap = true;
  Toggle sync_bn = Toggle::Auto;  // auto: on when the world size is above 1
  std::string sync_bn_group = "world";  // world | node | N ranks; launch/ resolves it to N
  double comm_timeout_s = 600.0;

  // Outputs
  std::string log_dir = "runs";
  std::string checkpoint_dir = "checkpoints";
  int64_t log_every = 100;
  EvalMode eval_mode = EvalMode::Rank0;
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
  bool cuda_graph = false;              // capture the step once, replay it (trainer/loop/graphed_step.h)
  bool share_gpus = false;              // more ranks than GPUs on a node: round-robin, NCCL over sockets
};

// Throws ConfigError (one line, naming the flag) for any out-of-range or inconsistent value.
void validate(const Config& config);

// The shortest text that reads back as the same double ("0.9", not "0.90000000000000002").
std::string shortest(double value);
// "82,123": how lists print in the config, its hash and error messages.
std::string join(const std::vector<double>& values);

// Canonical "key = value" lines, one per field of config_fields.h: printed by rank 0, compared
// across ranks by their hash (launch/app/main.cpp), stored in checkpoints.
std::string to_string(const Config& config);

// Whether the run trains with SyncBatchNorm (--sync-bn auto: when there are several ranks).
inline bool sync_batch_norm(const Config& c, int world_size) {
  return c.sync_bn == Toggle::On || (c.sync_bn == Toggle::Auto && world_size > 1);
}

}  // namespace dt::trainer

namespace dt {
template <>
struct EnumNames<trainer::OptimizerKind> {
  static constexpr std::array<std::pair<trainer::OptimizerKind, const char*>, 2> values{
      {{trainer::OptimizerKind::Sgd, "sgd"}, {trainer::OptimizerKind::Adam, "adam"}}};
};
template <>
struct EnumNames<trainer::ScheduleKind> {
  static constexpr std::array<std::pair<trainer::ScheduleKind, const char*>, 5> values{
      {{trainer::ScheduleKind::Constant, "constant"},
       {trainer::ScheduleKind::Step, "step"},
       {trainer::ScheduleKind::Cosine, "cosine"},
       {trainer::ScheduleKind::Linear, "linear"},
       {trainer::ScheduleKind::OneCycle, "onecycle"}}};
};
template <>
struct EnumNames<trainer::DeviceChoice> {
  static constexpr std::array<std::pair<trainer::DeviceChoice, const char*>, 3> values{
      {{trainer::DeviceChoice::Auto, "auto"},
       {trainer::DeviceChoice::Cuda, "cuda"},
       {trainer::DeviceChoice::Cpu, "cpu"}}};
};
template <>
struct EnumNames<trainer::Toggle> {
  static constexpr std::array<std::pair<trainer::Toggle, const char*>, 3> values{
      {{trainer::Toggle::Auto, "auto"}, {trainer::Toggle::On, "on"}, {trainer::Toggle::Off, "off"}}};
};
template <>
struct EnumNames<trainer::CpuConv> {
  static constexpr std::array<std::pair<trainer::CpuConv, const char*>, 2> values{
      {{trainer::CpuConv::Auto, "auto"}, {trainer::CpuConv::Direct, "direct"}}};
};
template <>
struct EnumNames<trainer::Precision> {
  static constexpr std::array<std::pair<trainer::Precision, const char*>, 3> values{
      {{trainer::Precision::Fp32, "fp32"},
       {trainer::Precision::Bf16, "bf16"},
       {trainer::Precision::Fp64, "fp64"}}};
};
template <>
struct EnumNames<trainer::EvalMode> {
  static constexpr std::array<std::pair<trainer::EvalMode, const char*>, 2> values{
      {{trainer::EvalMode::Rank0, "rank0"}, {trainer::EvalMode::Distributed, "distributed"}}};
};
template <>
struct EnumNames<trainer::EvalTta> {
  static constexpr std::array<std::pair<trainer::EvalTta, const char*>, 2> values{
      {{trainer::EvalTta::None, "none"}, {trainer::EvalTta::Flip, "flip"}}};
};
}  // namespace dt
