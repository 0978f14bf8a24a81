// launch/ under mpirun -np 4 on one machine: rank, local rank and device mapping come from MPI.
#include <gtest/gtest.h>
#include <mpi.h>
#include "launch/app/device.h"
#include "tests/comm/mpi_test_env.h"
#include "trainer/errors.h"

using namespace dt;

TEST(LaunchMapping, RanksAndLocalRanksFromMpi) {
  const auto& w = test_util::mpi_world();
  ASSERT_TRUE(w.mpi) << "this suite runs under mpirun";
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(w.rank, rank);
  EXPECT_EQ(w.size, size);
  // One machine: every rank is local, and local ranks are the ranks.
  EXPECT_EQ(w.local_size, size);
  EXPECT_EQ(w.local_rank, rank);
  // Open MPI's own view agrees.
  if (const char* lr = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) EXPECT_EQ(w.local_rank, std::atoi(lr));
}

TEST(LaunchMapping, EachLocalRankGetsItsOwnGpu) {
  const auto& w = test_util::mpi_world();
  // As many GPUs as local ranks: local rank r -> cuda:r.
  auto d = launch::resolve_device(trainer::DeviceChoice::Cuda, w, w.local_size);
  EXPECT_TRUE(d.is_cuda());
  EXPECT_EQ(d.index(), w.local_rank);
  EXPECT_EQ(launch::resolve_device(trainer::DeviceChoice::Auto, w, w.local_size + 2).index(), w.local_rank);
  // No GPU: auto falls back to CPU; cuda is refused.
  EXPECT_TRUE(launch::resolve_device(trainer::DeviceChoice::Auto, w, 0).is_cpu());
  EXPECT_THROW(launch::resolve_device(trainer::DeviceChoice::Cuda, w, 0), trainer::ConfigError);
  EXPECT_TRUE(launch::resolve_device(trainer::DeviceChoice::Cpu, w, 8).is_cpu());
  if (w.local_size > 1) {
    try {
      launch::resolve_device(trainer::DeviceChoice::Auto, w, w.local_size - 1);
      FAIL() << "more ranks than GPUs on a node must be refused";
    } catch (const trainer::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
    }
  }
}
