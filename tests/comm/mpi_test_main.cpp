// main() for suites that run under mpirun: initialises MPI around GoogleTest, and makes the
// process exit non-zero when any rank fails (so mpirun, and CTest, see the failure). A run in
// which every test skipped (the GPU suite without a GPU) exits 77, which CTest reports as
// skipped (SKIP_RETURN_CODE, tests/CMakeLists.txt), not as passed.
#include <gtest/gtest.h>
#include <mpi.h>
#include "tests/comm/mpi_test_env.h"
#if DT_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif
#include <cstdlib>
#include <string>
#include "launch/app/device.h"
#include "launch/app/nccl_env.h"

namespace dt::test_util {
comm::World& mpi_world() {
  static comm::World world;
  return world;
}

comm::Communicator& cpu_communicator() {
  static comm::Communicator c(mpi_world(), std::chrono::seconds(60));
  return c;
}

bool gpu_required() {
  const char* v = std::getenv("DT_GPU_REQUIRED");
  return v && std::string(v) == "1";
}

torch::Device cuda_device() {
  const int gpus = launch::visible_gpus();
  return torch::Device(torch::kCUDA, c10::DeviceIndex(gpus > 0 ? mpi_world().local_rank % gpus : 0));
}

comm::Communicator* cuda_communicator() {
  static comm::Communicator* c = []() -> comm::Communicator* {
    const int gpus = launch::visible_gpus();
    if (gpus == 0) return nullptr;
    const auto& world = mpi_world();
    // Before this process's first NCCL call; several ranks on one GPU become NCCL hosts of their
    // own, as dist_train --share-gpus makes them.
    launch::prepare_nccl_environment(world, launch::shares_gpu(world, gpus));
#if DT_HAVE_CUDA
    c10::cuda::set_device(cuda_device().index());
#endif
    // A generous deadline: ranks that share a GPU take turns on it.
    auto* made = new comm::Communicator(world, std::chrono::seconds(300));
    made->start_nccl(int(cuda_device().index()));
    return made;  // lives to the end of the process, like the MPI world it runs on
  }();
  return c;
}
}  // namespace dt::test_util

constexpr int kAllSkipped = 77;

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto& world = dt::test_util::mpi_world();
  world = dt::comm::init_world(&argc, &argv);
  if (world.rank != 0) {
    // Only rank 0 prints progress; failures still print on the rank that fails.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  const auto& unit = *::testing::UnitTest::GetInstance();
  int all_skipped = unit.successful_test_count() == 0 && unit.skipped_test_count() > 0;
  int any_failed = failed, every_rank_skipped = all_skipped;
  if (world.mpi) {
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&all_skipped, &every_rank_skipped, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (any_failed && !failed) std::fprintf(stderr, "rank %d: another rank failed\n", world.rank);
  }
  dt::comm::finalize_world(world);
  if (any_failed) return 1;
  return every_rank_skipped ? kAllSkipped : 0;
}
