// bench_conv [BATCH] [REPS]: milliseconds per 3x3 convolution layer of the CIFAR ResNets (stride 1,
// channels_last fp32, one CPU thread), LibTorch's (oneDNN) against model/conv3x3's Winograd, for
// the forward pass and the backward pass (input and filter gradients). Checks that both give the
// same output, input gradient and filter gradient (to rounding), and exits 1 if they do not.
// Prints a Markdown table.
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "model/conv3x3.h"

namespace {

struct Timing {
  double forward_ms, backward_ms;
  torch::Tensor y, grad_x, grad_w;  // of the last repetition
};

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

// Median over `reps` of forward and of backward, for one algorithm.
Timing time_layer(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& grad_y,
                  dt::model::Conv3x3Algorithm algorithm, int reps) {
  dt::model::set_conv3x3_algorithm(algorithm);
  dt::model::Conv3x3 conv(w0.size(1), w0.size(0));
  conv->weight.set_data(w0.clone());
  std::vector<double> fwd, bwd;
  Timing t;
  for (int r = 0; r < reps + 3; ++r) {  // 3 warm-up repetitions
    const auto x = x0.detach().requires_grad_(true);
    conv->weight.mutable_grad() = torch::Tensor();
    const auto t0 = std::chrono::steady_clock::now();
    const auto y = conv(x);
    const auto t1 = std::chrono::steady_clock::now();
    y.backward(grad_y);
    const auto t2 = std::chrono::steady_clock::now();
    t.y = y.detach();
    t.grad_x = x.grad();
    t.grad_w = conv->weight.grad();
    if (r < 3) continue;
    fwd.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    bwd.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  t.forward_ms = median(fwd);
  t.backward_ms = median(bwd);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::stoll(argv[1]) : 30;
  const int reps = argc > 2 ? std::stoi(argv[2]) : 50;
  // Keep freed activations in the heap: otherwise glibc hands each 2 MB buffer back to the kernel
  // and every repetition pays page faults that a training step (whose allocations settle) does not.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  torch::set_num_threads(1);
  torch::manual_seed(0);
  if (!dt::model::winograd_available()) {
    std::fprintf(stderr, "bench_conv: this CPU has no AVX-512F, so no Winograd to compare\n");
    return 2;
  }
  std::printf("| layer (batch %lld) | oneDNN fwd | Winograd fwd | oneDNN bwd | Winograd bwd | "
              "fwd+bwd speed-up |\n|---|---:|---:|---:|---:|---:|\n",
              static_cast<long long>(batch));
  struct Layer { int64_t channels, size; };
  for (const Layer l : {Layer{16, 32}, Layer{32, 16}, Layer{64, 8}}) {
    const auto cl = at::MemoryFormat::ChannelsLast;
    const auto x = torch::randn({batch, l.channels, l.size, l.size}).contiguous(cl);
    const auto w = (torch::randn({l.channels, l.channels, 3, 3}) * 0.1).contiguous(cl);
    const auto grad_y = torch::randn({batch, l.channels, l.size, l.size}).contiguous(cl);
    const auto d = time_layer(x, w, grad_y, dt::model::Conv3x3Algorithm::Direct, reps);
    const auto g = time_layer(x, w, grad_y, dt::model::Conv3x3Algorithm::Auto, reps);
    // A fast wrong convolution is worth nothing: same output and gradients, to rounding (both
    // round here; tests/model/test_conv3x3.cpp holds Winograd to fp64 more tightly).
    const double err = std::max({relative_error(g.y, d.y), relative_error(g.grad_x, d.grad_x),
                                 relative_error(g.grad_w, d.grad_w)});
    if (err > 1e-4 || torch::equal(g.y, d.y)) {
      std::fprintf(stderr, "bench_conv: Winograd differs from LibTorch by %.2e (relative)%s\n",
                   err, torch::equal(g.y, d.y) ? ", or did not run" : "");
      return 1;
    }
    std::printf("| %lld->%lld, %lldx%lld | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2fx |\n",
                (long long)l.channels, (long long)l.channels, (long long)l.size,
                (long long)l.size, d.forward_ms, g.forward_ms, d.backward_ms, g.backward_ms,
                (d.forward_ms + d.backward_ms) / (g.forward_ms + g.backward_ms));
  }
  return 0;
}
