// Whole-file writes that are all or nothing: a crash or kill mid-write never leaves a torn file
// and never replaces the previous good one (checkpoints, replica-check dumps).
#pragma once
#include <string>
#include <vector>

namespace dt::trainer {

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename over `path`,
// fsync of the folder (created if missing). Failures are CheckpointErrors naming the file.
void write_file_atomically(const std::string& path, const std::vector<char>& bytes);

}  // namespace dt::trainer
