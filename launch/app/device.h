// Picks this rank's device: --device auto uses CUDA when a GPU is visible, else CPU. On CUDA each
// local rank binds to its own GPU (local rank = GPU index); more ranks on a node than GPUs is an
// error unless --device cpu, or --share-gpus, which maps the ranks round-robin onto the GPUs
// (local rank % GPUs) for debugging the multi-rank path on fewer GPUs (launch/app/nccl_env.h).
#pragma once
#include <torch/torch.h>
#include <string>
#include "comm/world.h"
#include "trainer/config/config.h"

namespace dt::launch {

// Throws trainer::ConfigError for an impossible request (cuda without a GPU, too many ranks).
torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world,
                             bool share_gpus);
// The same with the number of visible GPUs given (for tests).
torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world, int gpus,
                             bool share_gpus);
// The GPUs CUDA shows this process (0 without CUDA).
int visible_gpus();

}  // namespace dt::launch
