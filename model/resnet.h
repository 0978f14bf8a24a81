// The CIFAR-10 ResNets: the seed's ResNet-14 and He et al.'s ResNet-20/32/44/56/110.
//
// Module and attribute names follow the seed's Python ResNet (conv, bn, layer1..3, fc, and per
// block conv1, bn1, conv2, bn2, downsample.0/.1), so a state dict moves between C++ and Python
// unchanged.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>
#include "model/batch_norm.h"
#include "model/conv3x3.h"
#include "model/network.h"

namespace dt::model {

enum class Shortcut {
  Projection,  // the seed: 3x3 conv (stride s) + BN where the shape changes
  ZeroPad,     // He et al. option A: strided identity, zero-padded channels, no parameters
};

struct ResNetSpec {
  std::string name;
  int blocks_per_stage;
  Shortcut shortcut;
};

// Known model names, in the order --help lists them.
const std::vector<ResNetSpec>& resnet_specs();
// Throws std::invalid_argument naming the known models when `name` is not one of them.
const ResNetSpec& resnet_spec(const std::string& name);

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride, Shortcut shortcut);
  torch::Tensor forward(const torch::Tensor& x);

  Conv3x3 conv1{nullptr}, conv2{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // Projection shortcut only

 private:
  int64_t stride_ = 1, pad_channels_ = 0;  // ZeroPad shortcut
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public Network {
 public:
  explicit ResNetImpl(const ResNetSpec& spec, int64_t num_classes = 10);
  torch::Tensor forward(const torch::Tensor& x) override;

  Conv3x3 conv{nullptr};
  BatchNorm bn{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

ResNet make_resnet(const std::string& name, int64_t num_classes = 10);

}  // namespace dt::model
