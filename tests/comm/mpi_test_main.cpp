// main() for suites that run under mpirun: initialises MPI around GoogleTest, and makes the
// process exit non-zero when any rank fails (so mpirun, and CTest, see the failure).
#include <gtest/gtest.h>
#include <mpi.h>
#include "tests/comm/mpi_test_env.h"

namespace dt::test_util {
comm::World& mpi_world() {
  static comm::World world;
  return world;
}
}  // namespace dt::test_util

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
  int any_failed = failed;
  if (world.mpi) {
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_failed && !failed) std::fprintf(stderr, "rank %d: another rank failed\n", world.rank);
  }
  dt::comm::finalize_world(world);
  return any_failed ? 1 : 0;
}
