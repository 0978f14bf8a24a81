// --sync-bn-group: how many consecutive ranks reduce SyncBatchNorm statistics together. Large-scale
// ResNet training synchronises BatchNorm within a node rather than the whole world: its two
// blocking collectives per layer then never leave the node's fast links.
#pragma once
#include <string>
#include "comm/world.h"

namespace dt::launch {

// "world" -> the world size; "node" -> the ranks of this host (which must be consecutive ranks,
// as mpirun's default by-slot mapping and srun's block distribution place them); "N" -> N, which
// must divide the world size. Throws ConfigError naming the flag.
int resolve_sync_bn_group(const std::string& spec, const comm::World& world);

}  // namespace dt::launch
