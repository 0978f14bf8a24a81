// Kernel selection for the whole process, from the configuration: --deterministic (deterministic
// algorithms everywhere, cuDNN's included, no autotuning) and --no-cudnn-benchmark. Sets every
// switch either way, so a later call undoes an earlier one. Called before the first CUDA work.
#pragma once
#include "trainer/config.h"

namespace dt::launch {

void configure_kernels(const trainer::Config& config);

}  // namespace dt::launch
