// The 3x3 convolution (padding 1, no bias) every ResNet here is built of, and which algorithm
// runs it on the CPU.
//
// On a CPU with AVX-512, fp32 stride-1 convolutions of channels_last inputs whose channel counts
// are multiples of 16 run as Winograd F(4x4, 3x3) (model/winograd_kernels.h) for the forward pass,
// the input gradient and the filter gradient: 2.25 multiplies per output instead of 9, where
// LibTorch's oneDNN kernels already run at the core's peak. Everything else
// (GPU, bf16 autocast, fp64, strided, the 3-channel stem) is LibTorch's Conv2d unchanged.
// Results differ from the direct convolution by rounding only, a little more than its own and
// growing with the channel count: measured against fp64, a few 1e-6 of the largest value at
// 16-128 channels (LibTorch's fp32: below 2e-6), 2e-5 to 3e-5 at 512. First derivatives only:
// a backward with create_graph through it is refused (use Conv3x3Algorithm::Direct).
// Parallel over output tiles with LibTorch's intra-op threads (torch::set_num_threads).
#pragma once
#include <torch/torch.h>

namespace dt::model {

enum class Conv3x3Algorithm {
  Auto,    // Winograd where it applies (above), LibTorch elsewhere
  Direct,  // always LibTorch
};
// Process-wide; set once at start-up (launch/app/kernels.cpp, --cpu-conv), before any forward pass.
void set_conv3x3_algorithm(Conv3x3Algorithm algorithm);
Conv3x3Algorithm conv3x3_algorithm();

class Conv3x3Impl : public torch::nn::Conv2dImpl {
 public:
  Conv3x3Impl(int64_t in, int64_t out, int64_t stride = 1);
  torch::Tensor forward(const torch::Tensor& x);
  // Whether forward(x) runs Winograd under the current algorithm setting.
  bool uses_winograd(const torch::Tensor& x) const;
};
TORCH_MODULE(Conv3x3);

inline Conv3x3 conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return Conv3x3(in, out, stride);
}

// The Winograd convolution itself (stride 1, padding 1), differentiable in x and weight: x is
// [N, Cin, H, W] fp32 on the CPU, weight [Cout, Cin, 3, 3], Cin and Cout multiples of 16, and
// the CPU has AVX-512 (winograd_available()). Returns channels_last.
torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& weight);
bool winograd_available();

}  // namespace dt::model
