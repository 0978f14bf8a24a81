// Shared by the suites that run under mpirun: the MPI world of this process, and the
// communicators the multi-rank suites run their collectives on.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>
#include "comm/communicator.h"
#include "comm/world.h"

namespace dt::test_util {
comm::World& mpi_world();

// MPI only: collectives on CPU tensors.
comm::Communicator& cpu_communicator();

// The CUDA variants of the multi-rank suites: this rank's GPU (local rank % visible GPUs, as
// --share-gpus maps it) and a communicator with NCCL started on it, several ranks sharing a GPU
// as separate NCCL hosts (launch/app/nccl_env.h). Null where no GPU is visible. Every rank calls
// it at its first CUDA test (NCCL's set-up is a collective).
comm::Communicator* cuda_communicator();
torch::Device cuda_device();

// DT_GPU_REQUIRED=1 (launch/scripts/gpu_check.sh on a machine with GPUs): a GPU test that finds
// none fails instead of skipping, so a broken driver cannot pass as a clean run.
bool gpu_required();
}  // namespace dt::test_util

// The first line of a CUDA variant: skips (or, with DT_GPU_REQUIRED=1, fails) without a GPU.
#define DT_REQUIRE_CUDA_WORLD()                                                              \
  do {                                                                                       \
    if (!dt::test_util::cuda_communicator()) {                                               \
      if (dt::test_util::gpu_required()) FAIL() << "DT_GPU_REQUIRED=1 but CUDA sees no GPU"; \
      GTEST_SKIP() << "no CUDA GPU visible: skipped";                                        \
    }                                                                                        \
  } while (0)
