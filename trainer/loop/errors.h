// The loop's own failure: the loss went NaN or Inf (without --skip-nonfinite). Not bad input: the
// job ends with a non-zero exit other than 2.
#pragma once
#include <stdexcept>

namespace dt::trainer {
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::trainer
