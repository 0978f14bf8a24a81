#include "model/resnet9.h"

namespace dt::model {

ConvBnImpl::ConvBnImpl(int64_t in_channels, int64_t out_channels) {
  conv = register_module("conv", conv3x3(in_channels, out_channels));
  bn = register_module("bn", BatchNorm(out_channels));
}

torch::Tensor ConvBnImpl::forward(const torch::Tensor& x) { return bn(conv(x)).relu_(); }

ResNet9StageImpl::ResNet9StageImpl(int64_t in_channels, int64_t out_channels, bool residual) {
  conv = register_module("conv", conv3x3(in_channels, out_channels));
  bn = register_module("bn", BatchNorm(out_channels));
  if (residual) {
    res1 = register_module("res1", ConvBn(out_channels, out_channels));
    res2 = register_module("res2", ConvBn(out_channels, out_channels));
  }
}

torch::Tensor ResNet9StageImpl::forward(const torch::Tensor& x) {
  auto out = torch::max_pool2d(bn(conv(x)).relu_(), 2);
  // Not in place: backward needs both `out` (res1's input) and res2's ReLU output as they are.
  return res1 ? out + res2(res1(out)) : out;
}

ResNet9Impl::ResNet9Impl(int64_t num_classes) {
  // PyTorch's default initialisation, as Page's network used.
  prep = register_module("prep", ConvBn(3, 64));
  layer1 = register_module("layer1", ResNet9Stage(64, 128, true));
  layer2 = register_module("layer2", ResNet9Stage(128, 256, false));
  layer3 = register_module("layer3", ResNet9Stage(256, 512, true));
  fc = register_module("fc", torch::nn::Linear(torch::nn::LinearOptions(512, num_classes).bias(false)));
}

torch::Tensor ResNet9Impl::forward(const torch::Tensor& x) {
  auto out = layer3(layer2(layer1(prep(x))));
  out = torch::max_pool2d(out, 4).flatten(1);
  // Page's final scale: BatchNorm-sized features would otherwise give over-confident logits at
  // initialisation.
  return fc(out) * 0.125;
}

}  // namespace dt::model
