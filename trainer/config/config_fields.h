// Every field of Config, declared once: its group and flag, its key in the resolved
// configuration (to_string: the text rank 0 prints, the ranks compare and checkpoints store),
// and its help text. Its default is Config's own initialiser. launch/app/cli.cpp turns these rows
// into command-line flags and config.cpp prints them, so no field can be settable and yet
// missing from the compared text (tests/launch/test_cli.cpp checks every row both ways).
//
// A row is one call on `rows`, which provides:
//   value(group, flag, key, field, help)           --flag VALUE, parsed strictly as the field's type
//   enable(group, flag, key, field, help)          --flag turns a default-off bool on
//   disable(group, flag, key, field, help)         --flag turns a default-on bool off
//   setting(group, flag, key, field, value, help)  --flag sets the field to `value` (one of several
//                                                  such flags per field; two of them conflict)
// New flags go here, in the order the resolved configuration lists them.
#pragma once
#include <string>
#include <type_traits>
#include <vector>
#include "trainer/config/config.h"

namespace dt::trainer {

// How a field's value reads in the resolved configuration and in --help's defaults.
template <class T>
std::string value_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    return join(v);
  } else if constexpr (std::is_enum_v<T>) {
    return name_of(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    return shortest(v);
  } else {
    return std::to_string(v);  // bool as 0/1, as the resolved configuration always printed it
  }
}

template <class Rows>
void declare_config_fields(Rows& f, const std::string& model_names) {
  f.value("Data", "data", "data", &Config::data_dir,
          "CIFAR-10 binary folder (default: $CIFAR10_DIR, then data/cifar-10-batches-bin)");
  f.value("Data", "synthetic", "synthetic", &Config::synthetic,
          "train on N synthetic images instead of CIFAR-10 (0: real data when found)");
  f.value("Data", "augment", "augment", &Config::augment,
          "augmentation: " + enum_choices<data::AugmentMode>());
  f.value("Data", "normalize", "normalize", &Config::normalize,
          "input normalisation: auto (none with --augment seed, cifar otherwise; --eval-only: "
          "what the checkpoint's preprocess entry says) | cifar (CIFAR-10 mean and std) | none "
          "(pixel / 255, the seed's ToTensor())");
  f.value("Data", "crop-padding", "crop_padding", &Config::crop_padding,
          "padding before the random crop (standard)");
  f.value("Data", "pad-mode", "pad_mode", &Config::pad_mode,
          "crop padding: " + enum_choices<data::PadMode>());
  f.value("Data", "cutout", "cutout", &Config::cutout,
          "set a random NxN square of each training image to the mean (0: off)");
  f.disable("Data", "no-drop-last", "drop_last", &Config::drop_last,
            "pad the epoch's last global batch by wrapping instead of dropping it");

  f.value("Model and optimisation", "model", "model", &Config::model, "model: " + model_names);
  f.value("Model and optimisation", "epochs", "epochs", &Config::epochs, "epochs to train");
  f.value("Model and optimisation", "batch-size", "batch_size", &Config::batch_size,
          "batch size per rank (a micro-batch with --accumulate)");
  f.value("Model and optimisation", "global-batch-size", "global_batch_size",
          &Config::global_batch_size,
          "images per optimizer step over all ranks, kept whatever the world size: each rank "
          "takes G / (ranks x --accumulate); instead of --batch-size (0: use --batch-size)");
  f.value("Model and optimisation", "optimizer", "optimizer", &Config::optimizer,
          "optimizer: " + enum_choices<OptimizerKind>());
  f.value("Model and optimisation", "lr", "lr", &Config::lr,
          "learning rate (not scaled by world size)");
  f.value("Model and optimisation", "momentum", "momentum", &Config::momentum, "SGD momentum");
  f.enable("Model and optimisation", "nesterov", "nesterov", &Config::nesterov,
           "Nesterov momentum (SGD)");
  f.value("Model and optimisation", "weight-decay", "weight_decay", &Config::weight_decay,
          "L2 weight decay");
  f.value("Model and optimisation", "lr-schedule", "lr_schedule", &Config::lr_schedule,
          "LR schedule: constant|step|cosine|linear (to 0)|onecycle");
  f.value("Model and optimisation", "warmup-epochs", "warmup_epochs", &Config::warmup_epochs,
          "linear warm-up epochs from 0 (onecycle: its own ramp; 0 means 30% of the run)");
  f.value("Model and optimisation", "lr-step-epochs", "lr_step_epochs", &Config::lr_step_epochs,
          "step schedule: epochs between LR drops");
  f.value("Model and optimisation", "lr-milestones", "lr_milestones", &Config::lr_milestones,
          "step schedule: drop the LR at these epochs instead, e.g. 82,123 (He et al.)");
  f.value("Model and optimisation", "lr-gamma", "lr_gamma", &Config::lr_gamma,
          "step schedule: LR factor per drop");
  f.value("Model and optimisation", "label-smoothing", "label_smoothing", &Config::label_smoothing,
          "label smoothing of the cross-entropy loss");

  f.value("Execution", "device", "device", &Config::device,
          "device: " + enum_choices<DeviceChoice>());
  f.value("Execution", "seed", "seed", &Config::seed, "seed of weights, shuffling and augmentation");
  f.value("Execution", "threads", "threads", &Config::threads,
          "intra-op CPU threads (0: LibTorch default)");
  f.value("Execution", "max-steps", "max_steps", &Config::max_steps,
          "stop once N optimizer steps are done in all, a resumed checkpoint's included (0: no limit)");
  f.value("Execution", "channels-last", "channels_last", &Config::channels_last,
          "NHWC memory format: " + enum_choices<Toggle>());
  f.value("Execution", "cpu-conv", "cpu_conv", &Config::cpu_conv,
          "CPU 3x3 convolutions: auto (Winograd F(4x4,3x3) for fp32 stride-1 layers on AVX-512 "
          "CPUs, LibTorch's oneDNN elsewhere) | direct (always LibTorch)");
  f.value("Execution", "precision", "precision", &Config::precision,
          "fp32 | bf16 (autocast: bf16 convolutions and linear layers; fp32 weights, gradients, "
          "optimizer state and BatchNorm statistics) | fp64 (verification)");
  f.value("Execution", "eval-batch", "eval_batch", &Config::eval_batch, "evaluation batch size");
  f.value("Execution", "eval-every", "eval_every", &Config::eval_every,
          "evaluate the test set every N epochs (0: never)");
  f.value("Execution", "eval-tta", "eval_tta", &Config::eval_tta,
          "test-time augmentation: none | flip (average the logits of each test image and its "
          "mirror image)");

  f.value("Distribution", "bucket-mb", "bucket_mb", &Config::bucket_mb, "gradient bucket cap in MB");
  f.value("Distribution", "accumulate", "accumulate", &Config::accumulate,
          "micro-batches per optimizer step (gradient accumulation)");
  f.disable("Distribution", "no-overlap", "overlap", &Config::overlap,
            "all-reduce gradients after backward instead of during it (for A/B timing)");
  f.setting("Distribution", "sync-bn", "sync_bn", &Config::sync_bn, Toggle::On,
            "synchronise BatchNorm statistics across ranks (default: on when world size > 1)");
  f.setting("Distribution", "no-sync-bn", "sync_bn", &Config::sync_bn, Toggle::Off,
            "per-rank BatchNorm statistics even when world size > 1");
  f.value("Distribution", "sync-bn-group", "sync_bn_group", &Config::sync_bn_group,
          "SyncBatchNorm statistics within groups of N consecutive ranks: world | node (the "
          "ranks of one host) | N (dividing the world size); the log shows the resolved N");
  f.value("Distribution", "comm-timeout", "comm_timeout_s", &Config::comm_timeout_s,
          "deadline in seconds for any collective");

  f.value("Outputs", "log-dir", "log_dir", &Config::log_dir, "TensorBoard events and metrics.jsonl");
  f.value("Outputs", "checkpoint-dir", "checkpoint_dir", &Config::checkpoint_dir,
          "checkpoints (rank 0 writes)");
  f.value("Outputs", "log-every", "log_every", &Config::log_every,
          "log the training loss every N steps");
  f.value("Outputs", "eval", "eval_mode", &Config::eval_mode,
          "who evaluates: rank0 (others wait) | distributed (a shard each, reduced)");
  f.value("Outputs", "resume", "resume", &Config::resume,
          "resume from a checkpoint: auto (CHECKPOINT_DIR/last.pt if present) or a path");
  f.enable("Outputs", "eval-only", "eval_only", &Config::eval_only,
           "evaluate the --resume checkpoint on the test set, print the result as one JSON line "
           "on stdout, and exit without training");
  f.value("Outputs", "checkpoint-every", "checkpoint_every", &Config::checkpoint_every,
          "also keep epoch_N.pt every N epochs (0: only last.pt and best.pt)");
  f.value("Outputs", "keep", "keep", &Config::keep, "how many epoch_N.pt to keep (0: all)");
  f.value("Outputs", "checkpoint-every-steps", "checkpoint_every_steps",
          &Config::checkpoint_every_steps,
          "also write last.pt every N steps, mid-epoch (0: only at epoch ends)");
  f.enable("Execution", "skip-nonfinite", "skip_nonfinite", &Config::skip_nonfinite,
           "skip (and count) updates whose loss is NaN/Inf instead of stopping the run (reads the "
           "loss every step: a host sync on GPU)");
  f.value("Outputs", "trace", "trace", &Config::trace,
          "write a Chrome trace (chrome://tracing, Perfetto) of every rank's steps to FILE");
  f.value("Distribution", "verify-every", "verify_every", &Config::verify_every,
          "compare checksums of every replica's parameters, buffers and optimizer state across "
          "ranks every N steps and at every checkpoint (0: off)");
  f.enable("Execution", "deterministic", "deterministic", &Config::deterministic,
           "deterministic algorithms (cuDNN included): same seed and world size, same bits");
  f.disable("Execution", "no-cudnn-benchmark", "cudnn_benchmark", &Config::cudnn_benchmark,
            "do not autotune cuDNN convolution algorithms (always off with --deterministic)");
  f.enable("Distribution", "share-gpus", "share_gpus", &Config::share_gpus,
           "let a node run more ranks than it has GPUs, mapped round-robin (local rank % GPUs), "
           "NCCL connecting them over sockets as if on separate hosts: for debugging the "
           "multi-rank path on one GPU; its speed figures mean nothing");
  f.enable("Execution", "cuda-graph", "cuda_graph", &Config::cuda_graph,
           "capture the whole training step (forward, backward, update) as a CUDA graph after 3 "
           "warm-up steps and replay it (one GPU, world size 1, no --accumulate or "
           "--skip-nonfinite)");
}

}  // namespace dt::trainer
