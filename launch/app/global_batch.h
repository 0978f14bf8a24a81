// --global-batch-size G: the images of one optimizer step over all ranks, whatever the world
// size. Each rank takes G / (world size x --accumulate), so the sampler's global micro-batches,
// and with them the steps, are the same on any world size that divides G / accumulate: an
// elastic restart on fewer hosts (launch/recipes/run_elastic.sh) continues the same run.
#pragma once
#include <cstdint>
#include "trainer/config/config.h"

namespace dt::launch {

// The per-rank (micro-)batch: --batch-size when G is 0, else G / (world_size x accumulate).
// Throws ConfigError naming G, this world size and the world sizes that would work.
int64_t resolve_batch_per_rank(const trainer::Config& config, int world_size);

}  // namespace dt::launch
