// Typed errors of the communication layer.
#pragma once
#include <stdexcept>

namespace dt::comm {
// A failed MPI, NCCL or CUDA call, or a protocol violation between ranks.
struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A collective that did not complete before its deadline.
struct CommTimeout : CommError {
  using CommError::CommError;
};
// Ranks disagree (configuration, model structure): names the rank and both values.
struct RankMismatch : CommError {
  using CommError::CommError;
};
// The launch environment cannot work (e.g. srun without MPI support): bad input, exit code 2.
struct LaunchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::comm
