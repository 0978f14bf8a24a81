// Typed errors of the communication layer.
#pragma once
#include <exception>
#include <stdexcept>
#include "common/errors.h"

namespace dt::comm {
// A failed MPI, NCCL or CUDA call, or a protocol violation between ranks.
struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A collective that did not complete before its deadline.
struct CommTimeout : CommError {
  using CommError::CommError;
};
// Ranks disagree (configuration, model structure): names the rank and both values. Only ever
// raised from values every rank has gathered, so every rank raises it at the same point. Bad
// input (two nodes given different flags or data), not a failure of the communication.
struct RankMismatch : BadInput {
  using BadInput::BadInput;
};
// Every rank stops together after some rank rejected its input (comm::first_failing_rank):
// `cause` is that input error on the one rank that reports it, null on the others. main() prints
// the cause (if any) and every rank exits 2 through MPI_Finalize, with no MPI_Abort.
struct JointStop : std::runtime_error {
  explicit JointStop(std::exception_ptr cause_on_this_rank)
      : std::runtime_error("stopped with the other ranks over bad input"),
        cause(std::move(cause_on_this_rank)) {}
  std::exception_ptr cause;
};
// The launch environment cannot work (e.g. srun without MPI support): bad input, exit code 2.
struct LaunchError : BadInput {
  using BadInput::BadInput;
};
}  // namespace dt::comm
