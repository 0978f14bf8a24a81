// The fast CIFAR-10 ResNet of Page's "How to train your ResNet" (DAWNBench, 94% in 24 epochs):
// a wide 9-layer network with two residual stages, max pooling and a logit scale of 1/8.
//
//   prep    conv 3->64, BN, ReLU                                   32x32
//   layer1  conv 64->128, BN, ReLU, max pool 2, + res2(res1(.))    16x16
//   layer2  conv 128->256, BN, ReLU, max pool 2                     8x8
//   layer3  conv 256->512, BN, ReLU, max pool 2, + res2(res1(.))    4x4
//   max pool 4, linear 512->10 without bias, times 0.125
//
// where res1/res2 are conv, BN, ReLU blocks at the stage's width. 6,573,120 parameters.
#pragma once
#include <torch/torch.h>
#include "model/batch_norm.h"
#include "model/conv3x3.h"
#include "model/network.h"

namespace dt::model {

inline constexpr const char* kResNet9Name = "resnet9";

class ConvBnImpl : public torch::nn::Module {  // 3x3 conv (no bias), BatchNorm, ReLU
 public:
  ConvBnImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);

  Conv3x3 conv{nullptr};
  BatchNorm bn{nullptr};
};
TORCH_MODULE(ConvBn);

class ResNet9StageImpl : public torch::nn::Module {
 public:
  ResNet9StageImpl(int64_t in_channels, int64_t out_channels, bool residual);
  torch::Tensor forward(const torch::Tensor& x);

  Conv3x3 conv{nullptr};
  BatchNorm bn{nullptr};
  ConvBn res1{nullptr}, res2{nullptr};  // residual stages only
};
TORCH_MODULE(ResNet9Stage);

class ResNet9Impl : public Network {
 public:
  explicit ResNet9Impl(int64_t num_classes = 10);
  torch::Tensor forward(const torch::Tensor& x) override;

  ConvBn prep{nullptr};
  ResNet9Stage layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet9);

}  // namespace dt::model
