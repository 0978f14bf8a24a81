// model/conv3x3: the Winograd convolution against LibTorch's convolution in fp64 (forward, input
// gradient, filter gradient), and where the module chooses it.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "model/conv3x3.h"
#include "model/resnet.h"

using namespace dt;

namespace {

#define SKIP_WITHOUT_WINOGRAD()                                                     \
  if (!model::winograd_available()) {                                               \
    GTEST_SKIP() << "this CPU has no AVX-512F: the Winograd convolution never runs here"; \
  }

// Largest |a - b| over the largest |b|: rounding-sized for fp32 against fp64.
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const auto bd = b.to(torch::kDouble);
  return (a.to(torch::kDouble) - bd).abs().max().item<double>() / bd.abs().max().item<double>();
}

// Restores the process-wide algorithm whatever a test sets.
struct AlgorithmGuard {
  model::Conv3x3Algorithm saved = model::conv3x3_algorithm();
  ~AlgorithmGuard() { model::set_conv3x3_algorithm(saved); }
};

}  // namespace

TEST(Conv3x3, WinogradMatchesFp64Convolution) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(11);
  // Winograd's transforms round a few times more than a direct sum, more so the more channels
  // are summed (measured: 2e-6 to 7e-6 of the largest value up to 128 channels, about 1e-5 at
  // 256; LibTorch's fp32 below 2e-6); a wrong transform or index is off by order 1.
  struct Case { int64_t n, cin, cout, h, w; double tolerance; bool channels_last = true; };
  // Edges that are not multiples of the 4x4 tile, cin != cout, more than 64 output channels,
  // output channels the filter-gradient kernel splits in blocks of 64+16 and 64+32+16, and an
  // input in the default (NCHW) layout.
  for (const Case c : {Case{3, 16, 32, 7, 10, 2e-5}, Case{2, 48, 16, 8, 8, 2e-5},
                       Case{2, 64, 64, 5, 13, 2e-5}, Case{4, 16, 16, 32, 32, 2e-5},
                       Case{2, 32, 128, 6, 6, 2e-5}, Case{1, 80, 48, 1, 3, 2e-5},
                       Case{2, 32, 80, 5, 6, 2e-5}, Case{2, 16, 112, 9, 4, 2e-5},
                       Case{2, 32, 48, 7, 5, 2e-5, /*channels_last=*/false},
                       Case{2, 256, 256, 4, 4, 6e-5}}) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n << " cin " << c.cin << " cout " << c.cout
                                      << " " << c.h << "x" << c.w << (c.channels_last ? "" : " NCHW"));
    const auto x = torch::randn({c.n, c.cin, c.h, c.w})
                       .contiguous(c.channels_last ? at::MemoryFormat::ChannelsLast
                                                   : at::MemoryFormat::Contiguous);
    const auto w = torch::randn({c.cout, c.cin, 3, 3}) * 0.2;
    const auto grad_y = torch::randn({c.n, c.cout, c.h, c.w});

    const auto xw = x.clone().requires_grad_(true), ww = w.clone().requires_grad_(true);
    const auto y = model::winograd_conv3x3(xw, ww);
    y.backward(grad_y);

    const auto xd = x.to(torch::kDouble).requires_grad_(true);
    const auto wd = w.to(torch::kDouble).requires_grad_(true);
    const auto yd = torch::conv2d(xd, wd, {}, 1, 1);
    yd.backward(grad_y.to(torch::kDouble));

    if (c.channels_last) {
      EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
    }
    EXPECT_LT(relative_error(y, yd), c.tolerance);
    EXPECT_LT(relative_error(xw.grad(), xd.grad()), c.tolerance);
    EXPECT_LT(relative_error(ww.grad(), wd.grad()), c.tolerance);
  }
}

TEST(Conv3x3, TwoThreadsGiveTheSameForwardAndInputGradientAndACorrectFilterGradient) {
  SKIP_WITHOUT_WINOGRAD();
#ifndef _OPENMP
  GTEST_SKIP() << "built without OpenMP (-DDT_REQUIRE_OPENMP=OFF): our loops run on one thread";
#endif
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  // Without OpenMP in this build, at::parallel_for (a header template) silently runs serially.
  std::vector<int> seen(2, 0);
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { seen.at(at::get_thread_num()) = 1; });
  ASSERT_EQ(seen, std::vector<int>({1, 1})) << "at::parallel_for did not use two threads";

  torch::manual_seed(12);
  const auto x = torch::randn({6, 32, 16, 16}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({48, 32, 3, 3}) * 0.1;
  const auto grad_y = torch::randn({6, 48, 16, 16});
  struct Result { torch::Tensor y, grad_x, grad_w; };
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    const auto xg = x.clone().requires_grad_(true), wg = w.clone().requires_grad_(true);
    auto y = model::winograd_conv3x3(xg, wg);
    y.backward(grad_y);
    return Result{y.detach(), xg.grad(), wg.grad()};
  };
  const auto one = run(1);
  const auto two = run(2);
  at::set_num_threads(saved);
  // Each output tile is computed the same way whichever thread owns it.
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.grad_x, two.grad_x));
  // The filter gradient is summed per thread, then across threads: rounding may differ.
  const auto xd = x.to(torch::kDouble).requires_grad_(true);
  const auto wd = w.to(torch::kDouble).requires_grad_(true);
  torch::conv2d(xd, wd, {}, 1, 1).backward(grad_y.to(torch::kDouble));
  EXPECT_LT(relative_error(two.grad_w, wd.grad()), 2e-5);
  EXPECT_LT(relative_error(one.grad_w, wd.grad()), 2e-5);
}

TEST(Conv3x3, SecondDerivativeIsRefusedNotSilentlyWrong) {
  SKIP_WITHOUT_WINOGRAD();
  const auto x = torch::randn({1, 16, 4, 4}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto xg = x.clone().requires_grad_(true);
  const auto w = (torch::randn({16, 16, 3, 3}) * 0.1).requires_grad_(true);
  const auto y = model::winograd_conv3x3(xg, w).square().sum();
  try {
    torch::autograd::grad({y}, {xg}, {}, /*retain_graph=*/true, /*create_graph=*/true);
    FAIL() << "create_graph through the Winograd convolution should be refused";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--cpu-conv direct"), std::string::npos) << e.what();
  }
}

TEST(Conv3x3, ModuleChoosesWinogradExactlyWhereItApplies) {
  SKIP_WITHOUT_WINOGRAD();
  AlgorithmGuard guard;
  model::set_conv3x3_algorithm(model::Conv3x3Algorithm::Auto);
  torch::manual_seed(13);
  model::Conv3x3 conv(16, 32), strided(16, 32, 2), stem(3, 16);
  const auto x = torch::randn({2, 16, 8, 8});
  const auto x_cl = x.contiguous(at::MemoryFormat::ChannelsLast);

  EXPECT_TRUE(conv->uses_winograd(x_cl));
  EXPECT_FALSE(conv->uses_winograd(x)) << "NCHW input: the layout change would cost more";
  EXPECT_FALSE(strided->uses_winograd(x_cl)) << "stride 2";
  const auto cl = at::MemoryFormat::ChannelsLast;
  EXPECT_FALSE(stem->uses_winograd(torch::randn({2, 3, 8, 8}).contiguous(cl))) << "3 channels";
  EXPECT_FALSE(conv->uses_winograd(x_cl.to(torch::kDouble))) << "fp64";
  EXPECT_FALSE(conv->uses_winograd(x_cl.to(torch::kBFloat16))) << "bf16";
  const auto wrong_channels = torch::randn({2, 32, 8, 8}).contiguous(cl);
  EXPECT_FALSE(conv->uses_winograd(wrong_channels)) << "32 channels into a 16-channel layer";
  EXPECT_THROW(conv(wrong_channels), c10::Error) << "LibTorch reports the mismatch";
  {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    EXPECT_FALSE(conv->uses_winograd(x_cl)) << "CPU autocast runs the convolution in bf16";
    at::autocast::set_autocast_enabled(at::kCPU, false);
  }
  const auto fast = conv(x_cl);
  model::set_conv3x3_algorithm(model::Conv3x3Algorithm::Direct);
  EXPECT_FALSE(conv->uses_winograd(x_cl)) << "--cpu-conv direct";
  const auto direct = conv(x_cl);
  EXPECT_LT(relative_error(fast, direct), 2e-5);
  EXPECT_GT(fast.sub(direct).abs().max().item<float>(), 0.f)
      << "the two paths should differ by rounding: the same bits mean Winograd did not run";
}

TEST(Conv3x3, ResNetGradientsMatchDirectConvolution) {
  SKIP_WITHOUT_WINOGRAD();
  AlgorithmGuard guard;
  torch::manual_seed(14);
  auto net = model::make_resnet("resnet14");
  net->to(torch::kFloat);
  for (auto& p : net->parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  const auto images = torch::randn({8, 3, 32, 32}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto labels = torch::randint(0, 10, {8});
  auto grads = [&](model::Conv3x3Algorithm algorithm) {
    model::set_conv3x3_algorithm(algorithm);
    net->zero_grad();
    torch::nn::functional::cross_entropy(net->forward(images), labels).backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : net->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto winograd = grads(model::Conv3x3Algorithm::Auto);
  const auto direct = grads(model::Conv3x3Algorithm::Direct);
  ASSERT_EQ(winograd.size(), direct.size());
  bool any_differs = false;
  for (size_t i = 0; i < winograd.size(); ++i) {
    // Through a dozen layers and BatchNorm the rounding differences grow, but stay far below
    // what a wrong convolution would give (relative errors of order 1).
    EXPECT_LT(relative_error(winograd[i], direct[i]), 1e-3) << "parameter " << i;
    any_differs = any_differs || !torch::equal(winograd[i], direct[i]);
  }
  EXPECT_TRUE(any_differs) << "the same bits both ways: Winograd never ran in the network";
}
