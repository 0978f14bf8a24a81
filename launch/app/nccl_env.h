// The NCCL settings dist_train makes for itself, in its own environment, before the process's
// first NCCL call (rank 0's ncclGetUniqueId counts): NCCL reads each of them once per process.
// A variable the user set is never changed.
//
//   NCCL_RUNTIME_CONNECT=0   NCCL 2.28 connects peers lazily, inside the first collective of each
//                            kind, where a stuck peer would block the host before any deadline
//                            knows of it; connecting inside ncclCommInitRank keeps the handshake
//                            under --comm-timeout's set-up deadline (comm/nccl_backend.cpp).
//
// With --share-gpus, on a rank whose GPU serves several ranks of its node:
//   NCCL_HOSTID=HOST.rankLOCAL  NCCL refuses two ranks it believes share a GPU on one host, and
//                            it decides "one host" from this hash (src/misc/utils.cc): one per
//                            rank makes them separate nodes to NCCL...
//   NCCL_IB_DISABLE=1        ...which it then connects with a network transport: sockets,
//   NCCL_SOCKET_IFNAME=lo    over loopback (NCCL skips lo unless named).
#pragma once
#include <string>
#include <vector>
#include "comm/world.h"

namespace dt::launch {

// What was set, as "NAME=value" (the variables the user had set are left out).
std::vector<std::string> prepare_nccl_environment(const comm::World& world, bool shares_gpu);

// Whether this rank's GPU serves other ranks of its node too (more local ranks than GPUs).
inline bool shares_gpu(const comm::World& world, int gpus) {
  return gpus > 0 && world.local_size > gpus;
}

// Throws ConfigError when `device`'s compute mode lets one process alone use it (Exclusive
// Process, Prohibited): the ranks sharing it could not all open it.
void require_shareable_gpu(int device);

}  // namespace dt::launch
