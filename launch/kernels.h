// Kernel selection for the whole process, from the configuration: --deterministic (deterministic
// algorithms everywhere, cuDNN's included, no autotuning, cuBLAS's fixed-workspace mode) and
// --no-cudnn-benchmark. Called once, before the first CUDA work.
#pragma once
#include "trainer/config.h"

namespace dt::launch {

void configure_kernels(const trainer::Config& config);

}  // namespace dt::launch
