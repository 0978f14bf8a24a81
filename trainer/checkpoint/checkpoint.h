// Checkpoints in PyTorch's own torch.save format (a zip holding an untagged pickle of a dict), so
// that a Python user can torch.load("last.pt")["model"] (weights_only, the default) into the
// Python ResNet. Contents:
//   model        the state dict, Python names
//   preprocess   the input contract: scale, mean, std, layout (trainer/checkpoint/input_contract.h); absent
//                in files written before it (they were trained on CIFAR-10 mean/std input)
//   optimizer    {"kind": "adam"|"sgd", "state": {param index: {...}}} as in Python
//   epoch        epochs completed; samples_done: samples of the next epoch already consumed
//   step         optimizer steps completed; best_accuracy; world_size; config; model_name
//   seed, train_size  what a part-done epoch's order depends on (the sampler's seed, the
//                training set's size), so that a resume can refuse to skip or repeat samples
//   global_batch images per optimizer step over all ranks (batch x ranks x accumulate), which
//                decides the sequence of steps; absent in files written before it
//   rng          {"torch_cpu": generator state} (training draws no CUDA random numbers)
//   checksum     FNV-1a over every tensor's bytes and every position field, verified on load (a
//                flipped byte is caught, not trained on). Format dist_train/1 files (no seed or
//                train_size; checksum over tensors only) still load. The preprocess entry is
//                covered when present, so files written before it keep their checksum.
// A file without "model" whose entries are all tensors is a bare state dict
// (torch.save(model.state_dict())): weights only.
// Written atomically by rank 0 (atomic_file.h): a crash never leaves a torn file and never
// replaces the previous good checkpoint. Every failure to read one (missing, truncated, corrupt,
// foreign, another model; checkpoint_validation.h) is a CheckpointError (exit 2).
#pragma once
#include <torch/torch.h>
#include "trainer/config/config.h"
#include <optional>
#include <string>
#include <vector>
#include "data/normalization.h"
// The two layers under a checkpoint, which the replica check and tests use on their own too.
#include "trainer/checkpoint/atomic_file.h"        // write_file_atomically
#include "trainer/checkpoint/checkpoint_format.h"  // torch_save_bytes, torch_load_bytes

namespace dt::trainer {

struct TrainingState {
  int64_t epoch = 0;         // epochs completed
  int64_t samples_done = 0;  // samples of epoch `epoch` consumed (global), for mid-epoch resume
  int64_t step = 0;          // optimizer steps completed
  int64_t world_size = 1;
  double best_accuracy = 0;
  std::string config;  // the run's resolved settings (to_string(Config)), as one text
  std::string model_name;
  int64_t seed = 0;        // the sampler's seed
  int64_t train_size = 0;  // training samples per epoch, which samples_done counts in; 0: unknown
  int64_t global_batch = 0;  // images per optimizer step over all ranks; 0: unknown (older files)
  // The normalisation the weights expect (the "preprocess" entry); none in older files.
  std::optional<data::Normalization> input;
};

// The model's parameters and buffers under their Python names, in Python's order, on CPU.
c10::Dict<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

// The bytes of a checkpoint of the state now (tensors copied to the host): what save_checkpoint
// writes, and what CheckpointWriter writes later while training goes on.
std::vector<char> checkpoint_bytes(const torch::nn::Module& model,
                                   const torch::optim::Optimizer* optimizer,
                                   OptimizerKind optimizer_kind, const TrainingState& state);
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, OptimizerKind optimizer_kind,
                     const TrainingState& state);

struct LoadedCheckpoint {
  TrainingState state;
  bool full = false;  // false: weights only (e.g. saved from Python); optimizer and position absent
};

// Loads `path` into `model` (each tensor onto the device it already lives on) and, when the file
// holds one, into `optimizer`. Checks format, checksum, names and shapes before touching the model.
LoadedCheckpoint load_checkpoint(const std::string& path, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer,
                                 OptimizerKind optimizer_kind);
// The same from bytes already read (`name` labels errors); the fuzzer's entry point.
LoadedCheckpoint load_checkpoint_bytes(const std::vector<char>& bytes, const std::string& name,
                                       torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                                       OptimizerKind optimizer_kind);

}  // namespace dt::trainer
