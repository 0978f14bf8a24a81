// The configuration room's error: a flag, an environment variable or an output folder that this
// run cannot use. Bad input (common/errors.h): one line, exit 2.
#pragma once
#include "common/errors.h"

namespace dt::trainer {
struct ConfigError : BadInput {
  using BadInput::BadInput;
};
}  // namespace dt::trainer
