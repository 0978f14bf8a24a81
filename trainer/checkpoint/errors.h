// The checkpoint room's error: a file that cannot be written, read, validated or resumed. Bad
// input (common/errors.h): one line naming the file, exit 2.
#pragma once
#include "common/errors.h"

namespace dt::trainer {
struct CheckpointError : BadInput {
  using BadInput::BadInput;
};
}  // namespace dt::trainer
