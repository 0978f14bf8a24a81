// Shared by the suites that run under mpirun: the MPI world of this process.
#pragma once
#include "comm/world.h"

namespace dt::test_util {
comm::World& mpi_world();
}  // namespace dt::test_util
