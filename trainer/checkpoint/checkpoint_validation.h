// What a checkpoint's contents must satisfy before any of it is trusted: the checksum over its
// tensors and position, weights that fit the model (names, shapes, real numbers, finite values,
// non-negative variances), a possible training position, and sound optimizer state. Each check
// throws CheckpointError naming the file (`path`) and the offending entry; none changes anything.
#pragma once
#include <torch/torch.h>
#include <cstdint>
#include <string>
#include "trainer/checkpoint/checkpoint.h"

namespace dt::trainer {

// FNV-1a over every tensor's bytes (model, then optimizer state by parameter index) and, for
// format 2 (`state` not null), the position and settings first. Written on save, compared on load.
uint64_t checkpoint_checksum(const c10::Dict<std::string, torch::Tensor>& model,
                             const c10::impl::GenericDict& opt_state, const TrainingState* state,
                             const std::string& optimizer_kind);

// `weights` (the file's "model" entry) against `model`: the same names and shapes, floating-point
// parameters and running statistics, finite values, no negative running_var.
void check_weights(const c10::Dict<std::string, torch::Tensor>& weights,
                   const torch::nn::Module& model, const std::string& path);
// Non-negative counts, samples_done inside the epoch, a world of at least one, accuracy in [0, 1].
void check_position(const TrainingState& st, const std::string& path);
// Optimizer state `name` of parameter `i` (`p`): its shape, floating point, finite, and for
// exp_avg_sq not negative.
void check_optimizer_tensor(const torch::Tensor& t, const char* name, int64_t i,
                            const torch::Tensor& p, const std::string& path);
void check_optimizer_step(int64_t step, int64_t i, const std::string& path);

}  // namespace dt::trainer
