#include "launch/app/device.h"

#include "trainer/errors.h"

namespace dt::launch {

torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world) {
  return resolve_device(requested, world,
                        torch::cuda::is_available() ? int(torch::cuda::device_count()) : 0);
}

torch::Device resolve_device(trainer::DeviceChoice requested, const comm::World& world, int gpus) {
  using trainer::DeviceChoice;
  const bool cuda =
      requested == DeviceChoice::Cuda || (requested == DeviceChoice::Auto && gpus > 0);
  if (!cuda) return torch::kCPU;
  if (gpus == 0) {
    throw trainer::ConfigError("--device cuda, but no CUDA GPU is visible to rank " +
                               std::to_string(world.rank) + " on " + world.host);
  }
  if (world.local_size > gpus) {
    throw trainer::ConfigError(std::to_string(world.local_size) + " ranks on " + world.host +
                               " but only " + std::to_string(gpus) +
                               " GPUs: launch at most one rank per GPU, or use --device cpu");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank));
}

}  // namespace dt::launch
