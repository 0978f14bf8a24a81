// Typed errors of the trainer. ConfigError and CheckpointError are bad input: one line, exit 2.
#pragma once
#include <stdexcept>

namespace dt::trainer {
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The loss went NaN or Inf.
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::trainer
