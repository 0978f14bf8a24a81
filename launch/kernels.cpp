#include "launch/kernels.h"

#include <torch/torch.h>
#include <cstdlib>

namespace dt::launch {

void configure_kernels(const trainer::Config& config) {
  if (config.deterministic) {
    // The gradient reduction order is already fixed (buckets launched in index order) and every
    // random draw is seeded; what is left is the kernels'. cuBLAS is deterministic only with a
    // fixed workspace per stream (read when its first handle is made); a user's setting stays.
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
    at::globalContext().setDeterministicCuDNN(true);
  }
  // Autotuning picks the fastest algorithm per shape; shapes are static here, so it pays once.
  at::globalContext().setBenchmarkCuDNN(config.cudnn_benchmark && !config.deterministic);
}

}  // namespace dt::launch
