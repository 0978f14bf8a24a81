// The run's output places (--checkpoint-dir, --log-dir, --trace's folder), created and probed
// with a real write before the first step: an unwritable one is bad input found in a second,
// not an exception after an epoch of training.
#pragma once
#include "trainer/config/config.h"

namespace dt::trainer {

// Rank 0's job (the only writer). Throws ConfigError naming the flag, path and the OS's reason.
void prepare_output_paths(const Config& config);

// Writes `text` to `path` (replacing it); a write that does not reach the file (a full disk)
// throws OutputError "`label`: cannot write: <the OS's reason>".
void write_output_file(const std::string& path, const std::string& text, const std::string& label);

}  // namespace dt::trainer
