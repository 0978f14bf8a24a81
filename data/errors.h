// Bad input data (a missing, short or malformed file, an impossible option): the run reports one
// line and exits with code 2.
#pragma once
#include "common/errors.h"

namespace dt::data {
struct DataError : BadInput {
  using BadInput::BadInput;
};
}  // namespace dt::data
