// launch/ under mpirun -np 4 on one machine: rank, local rank and device mapping come from MPI.
#include <gtest/gtest.h>
#include <mpi.h>
#include "launch/app/device.h"
#include "launch/app/global_batch.h"
#include "launch/app/nccl_env.h"
#include "launch/app/sync_bn_group.h"
#include "tests/comm/mpi_test_env.h"
#include "trainer/config/errors.h"

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
  if (const char* lr = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) {
    EXPECT_EQ(w.local_rank, std::atoi(lr));
  }
}

TEST(LaunchMapping, EachLocalRankGetsItsOwnGpu) {
  const auto& w = test_util::mpi_world();
  // As many GPUs as local ranks: local rank r -> cuda:r.
  auto d = launch::resolve_device(trainer::DeviceChoice::Cuda, w, w.local_size, false);
  EXPECT_TRUE(d.is_cuda());
  EXPECT_EQ(d.index(), w.local_rank);
  EXPECT_EQ(launch::resolve_device(trainer::DeviceChoice::Auto, w, w.local_size + 2, false).index(), w.local_rank);
  // No GPU: auto falls back to CPU; cuda is refused.
  EXPECT_TRUE(launch::resolve_device(trainer::DeviceChoice::Auto, w, 0, false).is_cpu());
  EXPECT_THROW(launch::resolve_device(trainer::DeviceChoice::Cuda, w, 0, false), trainer::ConfigError);
  EXPECT_TRUE(launch::resolve_device(trainer::DeviceChoice::Cpu, w, 8, false).is_cpu());
  if (w.local_size > 1) {
    try {
      launch::resolve_device(trainer::DeviceChoice::Auto, w, w.local_size - 1, false);
      FAIL() << "more ranks than GPUs on a node must be refused";
    } catch (const trainer::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--share-gpus"), std::string::npos) << e.what();
    }
  }
}

// --share-gpus: more local ranks than GPUs map round-robin, and a rank that shares its GPU gets
// NCCL settings that make it a host of its own to NCCL, connected over loopback sockets.
TEST(LaunchMapping, SharedGpusMapRoundRobinWithAHostIdPerRank) {
  const auto& w = test_util::mpi_world();
  for (int gpus : {1, 2, 3}) {
    auto d = launch::resolve_device(trainer::DeviceChoice::Cuda, w, gpus, true);
    EXPECT_EQ(d.index(), w.local_rank % gpus) << gpus << " GPUs";
  }
  EXPECT_EQ(launch::shares_gpu(w, 1), w.local_size > 1);
  EXPECT_FALSE(launch::shares_gpu(w, w.local_size));
  EXPECT_FALSE(launch::shares_gpu(w, 0)) << "no GPU: CPU ranks share nothing";

  ::unsetenv("NCCL_HOSTID");
  ::unsetenv("NCCL_IB_DISABLE");
  ::setenv("NCCL_SOCKET_IFNAME", "eth7", 1);  // the user's choice stays
  ::unsetenv("NCCL_RUNTIME_CONNECT");
  const auto set = launch::prepare_nccl_environment(w, /*shares_gpu=*/true);
  const std::string host_id = std::getenv("NCCL_HOSTID");
  EXPECT_EQ(host_id, w.host + ".rank" + std::to_string(w.local_rank));
  EXPECT_STREQ(std::getenv("NCCL_IB_DISABLE"), "1");
  EXPECT_STREQ(std::getenv("NCCL_SOCKET_IFNAME"), "eth7");
  EXPECT_STREQ(std::getenv("NCCL_RUNTIME_CONNECT"), "0");
  EXPECT_EQ(set.size(), 3u) << "the user's NCCL_SOCKET_IFNAME is not reported as set";
  // Every rank's host id differs from every other's.
  std::vector<char> all(size_t(w.size) * 256, 0);
  char mine[256] = {};
  host_id.copy(mine, sizeof(mine) - 1);
  MPI_Allgather(mine, 256, MPI_CHAR, all.data(), 256, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < w.size; ++r) {
    if (r != w.rank) {
      EXPECT_NE(std::string(&all[size_t(r) * 256]), host_id) << "rank " << r;
    }
  }
  ::unsetenv("NCCL_HOSTID");
  ::unsetenv("NCCL_IB_DISABLE");
  ::unsetenv("NCCL_SOCKET_IFNAME");
  ::unsetenv("NCCL_RUNTIME_CONNECT");
  // Not sharing: only the eager connection.
  EXPECT_EQ(launch::prepare_nccl_environment(w, false), std::vector<std::string>{"NCCL_RUNTIME_CONNECT=0"});
  EXPECT_EQ(std::getenv("NCCL_HOSTID"), nullptr);
  ::unsetenv("NCCL_RUNTIME_CONNECT");
}

// --global-batch-size G: each rank takes G / (world x accumulate); a world that does not divide
// G / accumulate is refused naming the world sizes that would work.
TEST(LaunchMapping, GlobalBatchSplitsOverTheWorldOrNamesTheWorldsThatWould) {
  const auto& w = test_util::mpi_world();
  trainer::Config c;
  EXPECT_EQ(launch::resolve_batch_per_rank(c, w.size), c.batch_size) << "G 0: --batch-size per rank";
  c.global_batch_size = 120;
  EXPECT_EQ(launch::resolve_batch_per_rank(c, w.size), 120 / w.size);
  c.accumulate = 3;
  EXPECT_EQ(launch::resolve_batch_per_rank(c, w.size), 40 / w.size);
  c.accumulate = 1;
  c.global_batch_size = 50;
  for (const int world : {1, 2, 5}) EXPECT_EQ(launch::resolve_batch_per_rank(c, world), 50 / world);
  try {
    launch::resolve_batch_per_rank(c, 4);
    ADD_FAILURE() << "50 over 4 ranks";
  } catch (const trainer::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--global-batch-size 50 does not split evenly over 4 ranks; world sizes "
                           "that would work: 1, 2, 5, 10, 25 or 50");
  }
  c.global_batch_size = 60;
  c.accumulate = 2;
  try {
    launch::resolve_batch_per_rank(c, 4);
    ADD_FAILURE() << "30 per micro-batch over 4 ranks";
  } catch (const trainer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--global-batch-size 60 with --accumulate 2 does not split evenly "
                                         "over 4 ranks; world sizes that would work: 1, 2, 3, 5, 6, 10, 15 or 30"),
              std::string::npos) << e.what();
  }
}

// --sync-bn-group resolves to a number of ranks that divides the world; node means this host's
// ranks (here, every rank: one machine).
TEST(LaunchMapping, SyncBatchNormGroupResolvesToADivisorOfTheWorld) {
  const auto& w = test_util::mpi_world();
  EXPECT_EQ(launch::resolve_sync_bn_group("world", w), w.size);
  EXPECT_EQ(launch::resolve_sync_bn_group("node", w), w.local_size);
  EXPECT_EQ(launch::resolve_sync_bn_group("1", w), 1);
  if (w.size % 3 != 0) {
    EXPECT_THROW(launch::resolve_sync_bn_group("3", w), trainer::ConfigError);
  }
  comm::World scattered = w;  // a node's ranks not in one block: rank 1 of 2 at local rank 0
  scattered.rank = 1;
  scattered.size = 4;
  scattered.local_rank = 0;
  scattered.local_size = 2;
  EXPECT_THROW(launch::resolve_sync_bn_group("node", scattered), trainer::ConfigError);
}
