#include "launch/app/device.h"

#include "trainer/config/errors.h"

namespace dt::launch {

int visible_gpus() { return torch::cuda::is_available() ? int(torch::cuda::device_count()) : 0; }

torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world,
                             bool share_gpus) {
  return resolve_device(requested, world, visible_gpus(), share_gpus);
}

torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world, int gpus,
                             bool share_gpus) {
  using trainer::DeviceChoice;
  const bool cuda =
      requested == DeviceChoice::Cuda || (requested == DeviceChoice::Auto && gpus > 0);
  if (!cuda) return torch::kCPU;
  if (gpus == 0) {
    throw trainer::ConfigError("--device cuda, but no CUDA GPU is visible to rank " +
                               std::to_string(world.rank) + " on " + world.host);
  }
  if (world.local_size > gpus && !share_gpus) {
    throw trainer::ConfigError(std::to_string(world.local_size) + " ranks on " + world.host +
                               " but only " + std::to_string(gpus) +
                               " GPUs: launch at most one rank per GPU, use --device cpu, or "
                               "--share-gpus to debug several ranks per GPU");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank % gpus));
}

}  // namespace dt::launch
