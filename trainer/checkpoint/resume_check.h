// What a resume may and may not change. A checkpoint stopped part-way through an epoch records
// how many samples of that epoch's permutation were consumed; the permutation is a function of
// the sampler's seed and the training set's size, so resuming with either changed would skip
// some samples and repeat others without a word. Those are refused; every other changed setting
// (learning rate, batch size, world size, epochs, ...) is allowed and listed.
#pragma once
#include <string>
#include <vector>
#include "trainer/checkpoint/checkpoint.h"

namespace dt::trainer {

// The log line about the global batch on resume, or "" when the file does not record it. Kept:
// the steps continue as the uninterrupted run's, on any world size. Changed: they do not, and
// the line says how to keep it (a warning, not an error: a new batch size may be the intent).
std::string global_batch_note(const std::string& file, const TrainingState& saved,
                              const TrainingState& now);

// Throws CheckpointError (one line naming both values) when `now` cannot continue `saved`.
void check_resumable(const std::string& file, const TrainingState& saved, const TrainingState& now);

// "key: old -> new" for each setting of to_string(Config) text that differs, in the order of
// `now`; `resume` itself and settings absent from `saved` (an older file) are left out.
std::vector<std::string> changed_settings(const std::string& saved, const std::string& now);

// `saved` with the settings a file written before they existed was trained with, so that a
// resume lists them as changed too: normalize = cifar (every run normalised before --normalize).
std::string with_implicit_settings(const std::string& saved);

}  // namespace dt::trainer
