#include "launch/app/kernels.h"

#include <torch/torch.h>

#include "model/conv3x3.h"

namespace dt::launch {

void configure_kernels(const trainer::Config& config) {
  // The gradient reduction order is already fixed (buckets launched in index order) and every
  // random draw is seeded; what is left is the kernels'. (cuBLAS needs no workspace setting: all
  // of a rank's matrix products run on one stream.)
  at::globalContext().setDeterministicAlgorithms(config.deterministic, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(config.deterministic);
  // Autotuning picks the fastest algorithm per shape; shapes are static here, so it pays once.
  at::globalContext().setBenchmarkCuDNN(config.cudnn_benchmark && !config.deterministic);
  // Winograd is deterministic too (a fixed order of operations per tile), so it stays on there.
  model::set_conv3x3_algorithm(config.cpu_conv == trainer::CpuConv::Direct ? model::Conv3x3Algorithm::Direct
                                                           : model::Conv3x3Algorithm::Auto);
}

}  // namespace dt::launch
