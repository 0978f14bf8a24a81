// A learnable synthetic stand-in for CIFAR-10: each class has its own colour and stripe pattern,
// with per-image noise and shifts, so a model can reach high accuracy on it. Used when no real
// data is found, and by tests that must not depend on the real files.
#pragma once
#include <cstdint>
#include "data/dataset.h"

namespace dt::data {

// `n` images of 3x32x32 and labels cycling over 10 classes; the same (n, seed) gives the same set.
Dataset make_synthetic(int64_t n, uint64_t seed);

}  // namespace dt::data
