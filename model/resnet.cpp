#include "model/resnet.h"

#include <stdexcept>

namespace dt::model {
namespace {

torch::nn::Sequential make_stage(int64_t& in_channels, int64_t out_channels, int blocks,
                                 int64_t stride, Shortcut shortcut) {
  torch::nn::Sequential stage;
  for (int b = 0; b < blocks; ++b) {
    stage->push_back(BasicBlock(in_channels, out_channels, b == 0 ? stride : 1, shortcut));
    in_channels = out_channels;
  }
  return stage;
}

}  // namespace

const std::vector<ResNetSpec>& resnet_specs() {
  static const std::vector<ResNetSpec> specs = {
      {"resnet14", 2, Shortcut::Projection},  // the seed
      {"resnet20", 3, Shortcut::ZeroPad},   {"resnet32", 5, Shortcut::ZeroPad},
      {"resnet44", 7, Shortcut::ZeroPad},   {"resnet56", 9, Shortcut::ZeroPad},
      {"resnet110", 18, Shortcut::ZeroPad},
  };
  return specs;
}

const ResNetSpec& resnet_spec(const std::string& name) {
  std::string known;
  for (const auto& s : resnet_specs()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
}

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride,
                               Shortcut shortcut) {
  // Registration order is state_dict order: the seed's conv1, bn1, conv2, bn2, downsample.
  conv1 = register_module("conv1", conv3x3(in_channels, out_channels, stride));
  bn1 = register_module("bn1", BatchNorm(out_channels));
  conv2 = register_module("conv2", conv3x3(out_channels, out_channels));
  bn2 = register_module("bn2", BatchNorm(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    if (shortcut == Shortcut::Projection) {
      downsample = register_module(
          "downsample",
          torch::nn::Sequential(conv3x3(in_channels, out_channels, stride), BatchNorm(out_channels)));
    } else {
      stride_ = stride;
      pad_channels_ = out_channels - in_channels;
    }
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  // In-place ReLU and residual add, as the seed's nn.ReLU(inplace=True) and `out += residual`:
  // one less activation-sized allocation and pass each (BatchNorm's backward needs its input,
  // not its output, so overwriting the output is safe).
  auto out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out));
  torch::Tensor residual = x;
  if (downsample) {
    residual = downsample->forward(x);
  } else if (pad_channels_ > 0 || stride_ != 1) {
    using namespace torch::indexing;
    residual = x.index({Slice(), Slice(), Slice(None, None, stride_), Slice(None, None, stride_)});
    residual = torch::constant_pad_nd(residual, {0, 0, 0, 0, pad_channels_ / 2,
                                                 pad_channels_ - pad_channels_ / 2});
  }
  return out.add_(residual).relu_();
}

ResNetImpl::ResNetImpl(const ResNetSpec& spec, int64_t num_classes) {
  int64_t channels = 16;
  conv = register_module("conv", conv3x3(3, 16));
  bn = register_module("bn", BatchNorm(16));
  layer1 = register_module("layer1", make_stage(channels, 16, spec.blocks_per_stage, 1, spec.shortcut));
  layer2 = register_module("layer2", make_stage(channels, 32, spec.blocks_per_stage, 2, spec.shortcut));
  layer3 = register_module("layer3", make_stage(channels, 64, spec.blocks_per_stage, 2, spec.shortcut));
  fc = register_module("fc", torch::nn::Linear(64, num_classes));

  if (spec.shortcut == Shortcut::ZeroPad) {
    // He et al.'s initialisation; the seed keeps PyTorch's defaults, as its script did.
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) {
        torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      }
    }
  }
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x) {
  auto out = bn(conv(x)).relu_();
  out = layer3->forward(layer2->forward(layer1->forward(out)));
  out = torch::avg_pool2d(out, 8);
  return fc(out.flatten(1));
}

ResNet make_resnet(const std::string& name, int64_t num_classes) {
  return ResNet(resnet_spec(name), num_classes);
}

}  // namespace dt::model
