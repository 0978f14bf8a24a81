// Kernel selection for the whole process, from the configuration: --deterministic (deterministic
// algorithms everywhere, cuDNN's included, no autotuning), --no-cudnn-benchmark and --cpu-conv
// (the CPU's 3x3 convolution algorithm, model/conv3x3.h). Sets every
// switch either way, so a later call undoes an earlier one. Called before the first CUDA work.
#pragma once
#include "trainer/config/config.h"

namespace dt::launch {

void configure_kernels(const trainer::Config& config);

}  // namespace dt::launch
