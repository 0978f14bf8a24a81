// The report room's error: an output file (log, metrics, summary, trace, TensorBoard events)
// could not be written: a full disk, a folder removed under the run. The environment is bad
// input too (common/errors.h): one line, exit 2.
#pragma once
#include "common/errors.h"

namespace dt::trainer {
struct OutputError : BadInput {
  using BadInput::BadInput;
};
}  // namespace dt::trainer
