// Typed errors of the trainer. ConfigError, CheckpointError and OutputError are bad input
// (common/errors.h): one line, exit 2.
#pragma once
#include <stdexcept>
#include "common/errors.h"

namespace dt::trainer {
struct ConfigError : BadInput {
  using BadInput::BadInput;
};
struct CheckpointError : BadInput {
  using BadInput::BadInput;
};
// An output file (log, metrics, summary, trace) could not be written: a full disk, a folder
// removed under the run. The environment is bad input too: one line, exit 2.
struct OutputError : BadInput {
  using BadInput::BadInput;
};
// The loss went NaN or Inf.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::trainer
