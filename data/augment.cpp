#include "data/augment.h"

#include <ATen/Parallel.h>
#include "data/errors.h"

namespace dt::data {

AugmentMode parse_augment_mode(const std::string& name) {
  if (auto mode = parse_enum<AugmentMode>(name)) return *mode;
  throw DataError("unknown augmentation '" + name + "' (known: " + enum_choices<AugmentMode>(true) + ")");
}

PadMode parse_pad_mode(const std::string& name) {
  if (auto mode = parse_enum<PadMode>(name)) return *mode;
  throw DataError("unknown padding mode '" + name + "' (known: " + enum_choices<PadMode>(true) + ")");
}

std::string to_string(AugmentMode mode) { return name_of(mode); }
std::string to_string(PadMode mode) { return name_of(mode); }

void validate(const AugmentSpec& spec) {
  if (spec.pad < 0) throw DataError("crop padding must be >= 0, got " + std::to_string(spec.pad));
  if (spec.pad > 16) throw DataError("crop padding must be <= 16, got " + std::to_string(spec.pad));
  if (spec.cutout < 0 || spec.cutout > 32) {
    throw DataError("cutout must be in [0, 32] pixels, got " + std::to_string(spec.cutout));
  }
}

torch::Tensor prepare_source(const torch::Tensor& images, AugmentMode mode) {
  if (mode != AugmentMode::Seed) return images.contiguous();
  // The seed's Resize(40) on a 32x32 image: bilinear upsampling (antialias is moot when
  // enlarging), rounded back to uint8. Not bit-equal to PIL's resize (which torchvision applies
  // to PIL images): about a fifth of the pixels differ by 1 of 255. Done in chunks to bound the
  // float copy.
  std::vector<torch::Tensor> parts;
  namespace F = torch::nn::functional;
  for (int64_t i = 0; i < images.size(0); i += 4096) {
    auto chunk = images.slice(0, i, std::min<int64_t>(i + 4096, images.size(0))).to(torch::kFloat32);
    auto big = F::interpolate(chunk, F::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{40, 40})
                                         .mode(torch::kBilinear)
                                         .align_corners(false));
    parts.push_back(big.round().clamp(0, 255).to(torch::kUInt8));
  }
  return torch::cat(parts).contiguous();
}

AugmentGeometry geometry_for(const AugmentSpec& spec, int64_t source_size, bool train) {
  AugmentGeometry g{};
  g.src_size = static_cast<int32_t>(source_size);
  g.out_size = 32;
  g.pad = spec.mode == AugmentMode::Standard ? static_cast<int32_t>(spec.pad) : 0;
  g.reflect = spec.pad_mode == PadMode::Reflect;
  g.random_crop = train && spec.mode != AugmentMode::None;
  g.random_flip = train && spec.mode != AugmentMode::None;
  g.cutout = train ? static_cast<int32_t>(spec.cutout) : 0;
  return g;
}

namespace {

void channel_affine(bool normalize, float scale[3], float shift[3]) {
  for (int c = 0; c < 3; ++c) {
    scale[c] = normalize ? 1.f / (255.f * kCifarStd[c]) : 1.f / 255.f;
    shift[c] = normalize ? -kCifarMean[c] / kCifarStd[c] : 0.f;
  }
}

}  // namespace

torch::Tensor sample_draws(const torch::Tensor& indices, const AugmentGeometry& g, uint64_t seed,
                           int64_t epoch) {
  auto idx = indices.to(torch::kCPU, torch::kInt64).contiguous();
  auto out = torch::empty({idx.size(0), 5}, torch::kInt64);
  auto* ip = idx.data_ptr<int64_t>();
  auto acc = out.accessor<int64_t, 2>();
  for (int64_t b = 0; b < idx.size(0); ++b) {
    auto d = draw_sample(seed, epoch, ip[b], g);
    acc[b][0] = d.offset_y;
    acc[b][1] = d.offset_x;
    acc[b][2] = d.flip;
    acc[b][3] = d.cutout_y;
    acc[b][4] = d.cutout_x;
  }
  return out;
}

torch::Tensor augment_batch(const torch::Tensor& source, const torch::Tensor& indices,
                            const AugmentGeometry& g, bool normalize, uint64_t seed,
                            int64_t epoch, torch::ScalarType dtype, bool channels_last) {
  TORCH_CHECK(source.scalar_type() == torch::kUInt8 && source.dim() == 4 && source.is_contiguous(),
              "augment_batch: source must be contiguous uint8 [N, 3, S, S]");
  TORCH_CHECK(source.size(2) == g.src_size && source.size(3) == g.src_size,
              "augment_batch: source size does not match the geometry");
  const int64_t batch = indices.size(0);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
#if DT_HAVE_CUDA
  if (source.is_cuda()) {
    auto out = torch::empty({batch, 3, g.out_size, g.out_size},
                            source.options().dtype(dtype).memory_format(format));
    augment_batch_cuda(source, indices, g, normalize, seed, epoch, out);
    return out;
  }
#endif
  TORCH_CHECK(source.is_cpu(), "augment_batch: no CUDA support compiled in");
  auto out = torch::empty({batch, 3, g.out_size, g.out_size},
                          torch::TensorOptions().dtype(torch::kFloat32).memory_format(format));
  auto idx = indices.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = source.size(0);
  const int64_t* ip = idx.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    TORCH_CHECK(ip[b] >= 0 && ip[b] < n, "augment_batch: index ", ip[b], " outside [0, ", n, ")");
  }
  float scale[3], shift[3];
  channel_affine(normalize, scale, shift);
  const uint8_t* src = source.data_ptr<uint8_t>();
  const int64_t image_bytes = 3 * int64_t(g.src_size) * g.src_size;
  float* dst = out.data_ptr<float>();
  const auto st = out.strides();
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const SampleDraw d = draw_sample(seed, epoch, ip[b], g);
      const uint8_t* image = src + ip[b] * image_bytes;
      for (int32_t c = 0; c < 3; ++c)
        for (int32_t y = 0; y < g.out_size; ++y)
          for (int32_t x = 0; x < g.out_size; ++x)
            dst[b * st[0] + c * st[1] + y * st[2] + x * st[3]] =
                augment_pixel(image, g, d, c, y, x, scale[c], shift[c]);
    }
  });
  return dtype == torch::kFloat32 ? out : out.to(dtype);
}

}  // namespace dt::data
