#include "launch/app/nccl_env.h"

#include <cstdlib>
#if DT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#include "trainer/config/errors.h"

namespace dt::launch {
namespace {

// Sets `name` unless the user did; records what it set.
void set_default(const std::string& name, const std::string& value, std::vector<std::string>& set) {
  if (const char* given = std::getenv(name.c_str()); given && *given) return;
  ::setenv(name.c_str(), value.c_str(), /*overwrite=*/1);
  set.push_back(name + "=" + value);
}

}  // namespace

std::vector<std::string> prepare_nccl_environment(const comm::World& world, bool shares_gpu) {
  std::vector<std::string> set;
  set_default("NCCL_RUNTIME_CONNECT", "0", set);
  if (shares_gpu) {
    set_default("NCCL_HOSTID", world.host + ".rank" + std::to_string(world.local_rank), set);
    set_default("NCCL_IB_DISABLE", "1", set);
    set_default("NCCL_SOCKET_IFNAME", "lo", set);
  }
  return set;
}

void require_shareable_gpu(int device) {
#if DT_HAVE_CUDA
  int mode = cudaComputeModeDefault;
  if (cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, device) != cudaSuccess) return;
  if (mode == cudaComputeModeDefault) return;
  throw trainer::ConfigError(
      "--share-gpus: GPU " + std::to_string(device) + " is in compute mode " +
      (mode == cudaComputeModeExclusiveProcess ? std::string("Exclusive Process")
                                               : std::to_string(mode)) +
      ", which lets one process alone use it; set it to Default (nvidia-smi -c DEFAULT) to share it");
#else
  (void)device;
#endif
}

}  // namespace dt::launch
