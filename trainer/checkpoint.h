// Checkpoints in PyTorch's own torch.save format (torch::pickle_save of a dict), so that a Python
// user can torch.load("last.pt")["model"] into the Python ResNet. Written atomically: temporary
// file, fsync, rename, fsync of the directory; a crash never leaves a torn file or destroys the
// previous good checkpoint. Only rank 0 writes.
#pragma once
#include <torch/torch.h>
#include <string>

namespace dt::trainer {

// The model's parameters and buffers under their Python names.
c10::Dict<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

struct CheckpointMeta {
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // global steps completed
  int64_t world_size = 1;
  std::string config;
};

// Writes {model, epoch, step, world_size, config} to `path` atomically.
void save_checkpoint(const std::string& path, const torch::nn::Module& module,
                     const CheckpointMeta& meta);

// The bytes torch.save would write for `value` (zip container, untagged pickle).
std::vector<char> torch_save_bytes(const c10::IValue& value);

// Writes `bytes` to `path` atomically (exposed for tests).
void write_file_atomically(const std::string& path, const std::vector<char>& bytes);

}  // namespace dt::trainer
