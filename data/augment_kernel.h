// The per-pixel arithmetic of gather + crop + flip + cutout + normalise, shared by the CPU loop
// (augment.cpp) and the CUDA kernel (augment_cuda.cu) so that both produce identical batches.
#pragma once
#include <cstdint>
#include "data/sample_rng.h"

namespace dt::data {

struct AugmentGeometry {
  int32_t src_size;     // side of the (square) source images: 32, or 40 for the seed's resize
  int32_t pad;          // virtual padding around the source
  int32_t out_size;     // 32
  int32_t reflect;      // 1: reflect padding, 0: zero padding
  int32_t random_crop;  // 0: centre crop
  int32_t random_flip;
  int32_t cutout;       // side of a square of the output set to 0 (the mean), 0: none
  DT_HOST_DEVICE int32_t crop_range() const { return src_size + 2 * pad - out_size + 1; }
  DT_HOST_DEVICE int32_t center() const { return (src_size + 2 * pad - out_size) / 2; }
};

// The random parameters of one sample's augmentation.
struct SampleDraw {
  int32_t offset_y, offset_x;  // crop origin in the padded source, 0..(S + 2*pad - 32)
  int32_t flip;                // mirror horizontally when 1
  int32_t cutout_y, cutout_x;  // origin of the cutout square in the output, 0..(32 - cutout)
};

DT_HOST_DEVICE SampleDraw draw_sample(uint64_t seed, uint64_t epoch, uint64_t index,
                                      const AugmentGeometry& g) {
  SampleDraw d;
  const int32_t crop = g.crop_range();
  d.offset_y = g.random_crop ? int32_t(sample_draw(seed, epoch, index, 0) % crop) : g.center();
  d.offset_x = g.random_crop ? int32_t(sample_draw(seed, epoch, index, 1) % crop) : g.center();
  d.flip = g.random_flip ? int32_t(sample_draw(seed, epoch, index, 2) & 1) : 0;
  d.cutout_y = d.cutout_x = 0;
  if (g.cutout > 0) {  // both coordinates from the two halves of the last draw
    const uint64_t r = sample_draw(seed, epoch, index, 3);
    const uint32_t range = uint32_t(g.out_size - g.cutout + 1);
    d.cutout_y = int32_t(uint32_t(r) % range);
    d.cutout_x = int32_t(uint32_t(r >> 32) % range);
  }
  return d;
}

// CIFAR-10 per-channel statistics, applied after scaling to [0, 1].
constexpr float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
constexpr float kCifarStd[3] = {0.2470f, 0.2435f, 0.2616f};

DT_HOST_DEVICE int32_t reflect_index(int32_t i, int32_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * n - 2 - i;
  return i;
}

// Value of output pixel (c, y, x) of one sample, given its image (uint8 [3, S, S]) and draw.
DT_HOST_DEVICE float augment_pixel(const uint8_t* image, const AugmentGeometry& g,
                                   const SampleDraw& d, int32_t c, int32_t y, int32_t x,
                                   float scale, float shift) {
  if (g.cutout > 0 && y >= d.cutout_y && y < d.cutout_y + g.cutout && x >= d.cutout_x &&
      x < d.cutout_x + g.cutout) {
    return 0.f;
  }
  const int32_t xo = d.flip ? g.out_size - 1 - x : x;
  int32_t sy = d.offset_y + y - g.pad;
  int32_t sx = d.offset_x + xo - g.pad;
  float v = 0.f;
  if (g.reflect) {
    sy = reflect_index(sy, g.src_size);
    sx = reflect_index(sx, g.src_size);
    v = image[(c * g.src_size + sy) * g.src_size + sx];
  } else if (sy >= 0 && sy < g.src_size && sx >= 0 && sx < g.src_size) {
    v = image[(c * g.src_size + sy) * g.src_size + sx];
  }
  // (v/255 - mean) / std, folded into one multiply and one add, each rounded on its own: nvcc
  // would otherwise contract them into an FMA and the GPU batch would differ from the CPU's in
  // the last bit.
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(v, scale), shift);
#else
  return v * scale + shift;
#endif
}

}  // namespace dt::data
