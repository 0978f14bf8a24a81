#include "data/synthetic.h"

#include <algorithm>

namespace dt::data {

Dataset make_synthetic(int64_t n, uint64_t seed) {
  // The class templates are fixed (so a train set and a test set drawn with different seeds share
  // classes); the per-image variation comes from `seed`.
  auto template_gen = at::detail::createCPUGenerator(0xC1FA510ULL);
  auto gen = at::detail::createCPUGenerator(seed);
  auto labels = torch::arange(n, torch::kInt64).remainder(10);
  auto cls = torch::arange(10, torch::kFloat32).view({10, 1, 1, 1});
  auto colour = torch::rand({10, 3, 1, 1}, template_gen) * 0.6 + 0.2;
  auto yy = torch::arange(32, torch::kFloat32).view({1, 1, 32, 1});
  auto xx = torch::arange(32, torch::kFloat32).view({1, 1, 1, 32});
  auto freq = (cls + 1) * (3.14159265f / 16);
  auto horizontal = (cls.remainder(2) == 0).to(torch::kFloat32);
  auto stripes = torch::sin(freq * (horizontal * yy + (1 - horizontal) * xx));
  auto templates = (colour + 0.25 * stripes).clamp(0, 1);  // [10, 3, 32, 32]

  auto brightness = torch::rand({n, 1, 1, 1}, gen) * 0.3 - 0.15;
  // In chunks, so the float intermediates stay small (all at once, 100k images peaked at 6 GB).
  // The noise is drawn in order, so the images do not depend on the chunk size (CPU randn
  // gives the same stream split or whole, in multiples of 16 values: 3072 per image).
  auto images = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  constexpr int64_t kChunk = 4096;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t count = std::min(kChunk, n - begin);
    auto chunk = templates.index_select(0, labels.narrow(0, begin, count)) +
                 brightness.narrow(0, begin, count) + 0.15 * torch::randn({count, 3, 32, 32}, gen);
    images.narrow(0, begin, count).copy_((chunk.clamp(0, 1) * 255).round().to(torch::kUInt8));
  }
  return {images, labels, "synthetic(" + std::to_string(n) + ", seed " + std::to_string(seed) + ")"};
}

}  // namespace dt::data
