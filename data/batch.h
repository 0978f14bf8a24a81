// One training or evaluation batch, as the loaders hand it to the trainer.
#pragma once
#include <torch/torch.h>

namespace dt::data {

struct Batch {
  torch::Tensor images;  // [B, 3, 32, 32], dtype/format per LoaderOptions
  torch::Tensor labels;  // int64 [B]
  torch::Tensor indices; // the dataset rows, int64 [B] on CPU
  int64_t epoch = 0, step = 0;
};

}  // namespace dt::data
