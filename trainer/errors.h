// Typed errors of the trainer. ConfigError, CheckpointError and OutputError are bad input: one
// line, exit 2.
#pragma once
#include <stdexcept>

namespace dt::trainer {
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// An output file (log, metrics, summary, trace) could not be written: a full disk, a folder
// removed under the run. The environment is bad input too: one line, exit 2.
struct OutputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The loss went NaN or Inf.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::trainer
