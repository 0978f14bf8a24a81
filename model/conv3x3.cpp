#include "model/conv3x3.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <variant>

#include "model/winograd_kernels.h"

namespace dt::model {
namespace {

std::atomic<Conv3x3Algorithm> g_algorithm{Conv3x3Algorithm::Auto};

// K [9, 36]: the transformed filters are w.reshape(-1, 9) K.
const torch::Tensor& filter_transform_matrix() {
  static const torch::Tensor k = [] {
    const auto m = winograd::filter_transform();
    return torch::from_blob(const_cast<float*>(m.data()), {9, winograd::kPoints}, torch::kFloat)
        .clone();
  }();
  return k;
}

// Kept per thread: a fresh 0.5 MB buffer per call would be mmap'ed and faulted in each time.
// Cache-line aligned: the kernels' full-vector loads and stores would otherwise each split two
// lines (glibc's malloc returns such buffers at 16 mod 64).
float* thread_scratch(const winograd::Shape& s) {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> scratch;
  thread_local size_t capacity = 0;
  const size_t need = static_cast<size_t>(winograd::scratch_floats(s));
  if (need > capacity) {
    constexpr size_t kLine = 64;
    const size_t bytes = (need * sizeof(float) + kLine - 1) / kLine * kLine;
    scratch.reset(static_cast<float*>(std::aligned_alloc(kLine, bytes)));
    if (!scratch) throw std::bad_alloc();
    capacity = need;
  }
  return scratch.get();
}

// [36, rows, cols] transformed filters, rows being the convolution's input channels. For the
// input gradient the filters are flipped and their channel roles swapped: the correlation of the
// output gradient with the flipped, transposed filters is the input gradient (stride 1, pad 1).
torch::Tensor transform_filters(const torch::Tensor& weight, bool for_input_grad) {
  const auto& k = filter_transform_matrix();
  const auto w = for_input_grad ? weight.flip({2, 3}) : weight;
  const int64_t cout = w.size(0), cin = w.size(1);
  auto u = torch::mm(w.reshape({cout * cin, 9}), k).view({cout, cin, winograd::kPoints});
  // Forward: [point][cin][cout]; input gradient: [point][cout][cin].
  return (for_input_grad ? u.permute({2, 0, 1}) : u.permute({2, 1, 0})).contiguous();
}

// One convolution, no autograd: x [N, C, H, W] (made NHWC), filters from transform_filters.
torch::Tensor convolve(const torch::Tensor& x_any, const torch::Tensor& u) {
  const auto x = x_any.contiguous(at::MemoryFormat::ChannelsLast);
  const winograd::Shape s{x.size(0), x.size(2), x.size(3), u.size(1), u.size(2)};
  auto out = torch::empty({s.n, s.cout, s.h, s.w},
                          x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* in = x.data_ptr<float>();
  const float* filters = u.data_ptr<float>();
  float* y = out.data_ptr<float>();
  at::parallel_for(0, s.tiles(), winograd::block_tiles(s), [&](int64_t begin, int64_t end) {
    winograd::convolve(s, in, filters, y, begin, end, thread_scratch(s));
  });
  return out;
}

// The filters' gradient [Cout, Cin, 3, 3], in the filters' memory format, from the convolution's
// input x and output gradient. Each worker sums its tiles into its own transform-domain buffer;
// the buffers are added in worker order, so a given thread count always gives the same bits.
torch::Tensor filter_gradient(const torch::Tensor& x_any, const torch::Tensor& grad_out,
                              const torch::Tensor& weight) {
  const auto x = x_any.contiguous(at::MemoryFormat::ChannelsLast);
  const winograd::Shape s{x.size(0), x.size(2), x.size(3), x.size(1), grad_out.size(1)};
  // at::parallel_for hands out at most this many chunks, chunk i to thread i.
  const int64_t workers = std::min<int64_t>(
      at::get_num_threads(), at::divup(s.tiles(), winograd::block_tiles(s)));
  auto du = torch::zeros({workers, winograd::kPoints, s.cin, s.cout}, x.options());
  const float* in = x.data_ptr<float>();
  const float* g = grad_out.data_ptr<float>();
  float* d = du.data_ptr<float>();
  at::parallel_for(0, s.tiles(), winograd::block_tiles(s), [&](int64_t begin, int64_t end) {
    const int64_t worker = at::get_thread_num();
    TORCH_CHECK(worker < workers, "Winograd filter gradient: worker ", worker, " of ", workers);
    winograd::filter_gradient(s, in, g, d + worker * du.stride(0), begin, end,
                              thread_scratch(s));
  });
  // [36, cin, cout] -> [cout * cin, 36] K^T -> [cout, cin, 3, 3]
  const auto summed = workers == 1 ? du[0] : du.sum(0);
  const auto grad_u = summed.permute({2, 1, 0}).reshape({s.cout * s.cin, winograd::kPoints});
  return torch::mm(grad_u, filter_transform_matrix().t())
      .view({s.cout, s.cin, 3, 3})
      .contiguous(weight.suggest_memory_format());
}

struct WinogradConv3x3 : torch::autograd::Function<WinogradConv3x3> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight) {
    ctx->save_for_backward({x, weight});
    return convolve(x, transform_filters(weight, /*for_input_grad=*/false));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The gradients come from raw kernels, so they carry no graph of their own.
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "the Winograd convolution has no second derivative (backward with create_graph); "
                "run with --cpu-conv direct");
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto grad_out = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor grad_x, grad_w;
    if (ctx->needs_input_grad(0)) {
      grad_x = convolve(grad_out, transform_filters(weight, /*for_input_grad=*/true));
    }
    if (ctx->needs_input_grad(1)) grad_w = filter_gradient(x, grad_out, weight);
    return {grad_x, grad_w};
  }
};

}  // namespace

void set_conv3x3_algorithm(Conv3x3Algorithm algorithm) { g_algorithm = algorithm; }
Conv3x3Algorithm conv3x3_algorithm() { return g_algorithm; }

bool winograd_available() {
  static const bool available = winograd::cpu_supported();
  return available;
}

torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& weight) {
  TORCH_CHECK(winograd_available(), "Winograd convolution needs a CPU with AVX-512F");
  TORCH_CHECK(x.dim() == 4 && x.is_cpu() && x.scalar_type() == torch::kFloat,
              "Winograd convolution: x must be a 4-d fp32 CPU tensor");
  TORCH_CHECK(weight.dim() == 4 && weight.size(1) == x.size(1) && weight.size(2) == 3 &&
                  weight.size(3) == 3 && weight.scalar_type() == torch::kFloat && weight.is_cpu(),
              "Winograd convolution: weight must be fp32 [Cout, ", x.size(1), ", 3, 3] on the CPU");
  TORCH_CHECK(x.size(1) % winograd::kLanes == 0 && weight.size(0) % winograd::kLanes == 0,
              "Winograd convolution: channel counts must be multiples of ", winograd::kLanes);
  TORCH_CHECK(x.size(2) > 0 && x.size(3) > 0, "Winograd convolution: empty image");
  return WinogradConv3x3::apply(x, weight);
}

Conv3x3Impl::Conv3x3Impl(int64_t in, int64_t out, int64_t stride)
    : torch::nn::Conv2dImpl(
          torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)) {}

bool Conv3x3Impl::uses_winograd(const torch::Tensor& x) const {
  const auto& o = options;  // public and mutable: check all of it, not only what the ctor set
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
  return g_algorithm == Conv3x3Algorithm::Auto && winograd_available() &&
         o.stride()->at(0) == 1 && o.stride()->at(1) == 1 && padding &&
         (*padding)->at(0) == 1 && (*padding)->at(1) == 1 && o.dilation()->at(0) == 1 &&
         o.dilation()->at(1) == 1 && o.groups() == 1 && !o.bias() && !o.transposed() &&
         std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()) &&
         o.in_channels() % winograd::kLanes == 0 && o.out_channels() % winograd::kLanes == 0 &&
         // A mismatched input goes to LibTorch, which reports it.
         x.dim() == 4 && x.size(1) == o.in_channels() && x.size(2) > 0 && x.size(3) > 0 &&
         x.layout() == torch::kStrided && x.is_cpu() && x.scalar_type() == torch::kFloat &&
         weight.scalar_type() == torch::kFloat && weight.is_cpu() &&
         // channels_last runs already: converting layouts here would cost more than it saves.
         x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         // Under CPU autocast LibTorch runs this convolution in bf16.
         !at::autocast::is_autocast_enabled(at::kCPU);
}

torch::Tensor Conv3x3Impl::forward(const torch::Tensor& x) {
  if (uses_winograd(x)) return WinogradConv3x3::apply(x, weight);
  return torch::nn::Conv2dImpl::forward(x);
}

}  // namespace dt::model
