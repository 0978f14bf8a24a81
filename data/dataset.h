// An in-memory image classification set: uint8 images [N, 3, H, W] and int64 labels [N].
#pragma once
#include <torch/torch.h>
#include <string>

namespace dt::data {

struct Dataset {
  torch::Tensor images;  // uint8, [N, 3, H, W], contiguous
  torch::Tensor labels;  // int64, [N]
  std::string source;    // where it came from, for the log
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

}  // namespace dt::data
