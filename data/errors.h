// Bad input data (a missing, short or malformed file, an impossible option): the run reports one
// line and exits with code 2.
#pragma once
#include <stdexcept>

namespace dt::data {
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace dt::data
