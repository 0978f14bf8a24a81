// The one base of every bad-input error, whichever folder raises it: flags, data files,
// checkpoints, the launch environment, output folders, ranks that disagree. launch/app/main.cpp
// catches it once: one line, exit code 2. Anything else is a failure of the run (exit 1).
#pragma once
#include <stdexcept>

namespace dt {

struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace dt
