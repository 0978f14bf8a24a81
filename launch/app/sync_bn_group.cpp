#include "launch/app/sync_bn_group.h"

#include "trainer/config/errors.h"

namespace dt::launch {

int resolve_sync_bn_group(const std::string& spec, const comm::World& world) {
  if (spec == "world") return world.size;
  if (spec == "node") {
    // Groups are blocks of consecutive ranks; a node's ranks form one only when they are placed
    // in blocks of equal size.
    if (world.size % world.local_size != 0 || world.local_rank != world.rank % world.local_size) {
      throw trainer::ConfigError(
          "--sync-bn-group node: rank " + std::to_string(world.rank) + " is local rank " +
          std::to_string(world.local_rank) + " of " + std::to_string(world.local_size) + " on " +
          world.host + ", so the ranks of a node are not a block of consecutive ranks (launch "
          "with the same number of ranks per node, mapped by slot, or give a number)");
    }
    return world.local_size;
  }
  const int n = std::stoi(spec);  // validate() admitted only digits
  if (world.size % n != 0) {
    throw trainer::ConfigError("--sync-bn-group " + spec + " does not divide the world of " +
                               std::to_string(world.size) + " ranks");
  }
  return n;
}

}  // namespace dt::launch
