#include "data/synthetic.h"

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

  auto images = templates.index_select(0, labels);
  auto brightness = torch::rand({n, 1, 1, 1}, gen) * 0.3 - 0.15;
  images = images + brightness + 0.15 * torch::randn(images.sizes(), gen);
  images = (images.clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
  return {images, labels, "synthetic(" + std::to_string(n) + ", seed " + std::to_string(seed) + ")"};
}

}  // namespace dt::data
