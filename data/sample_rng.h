// Per-sample random draws keyed on (seed, epoch, sample index, draw number).
//
// Counter-based, so a sample's augmentation is the same whatever the world size, the rank that
// holds it, the batch it lands in, or the device (CPU loop or CUDA kernel) that computes it.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define DT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DT_HOST_DEVICE inline
#endif

namespace dt::data {

DT_HOST_DEVICE uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

DT_HOST_DEVICE uint64_t sample_draw(uint64_t seed, uint64_t epoch, uint64_t index, uint64_t k) {
  return splitmix64(splitmix64(splitmix64(seed ^ 0xa0761d6478bd642fULL) ^ epoch) ^
                    (index * 4 + k));
}

// The random parameters of one sample's augmentation.
struct SampleDraw {
  int32_t offset_y, offset_x;  // crop origin in the padded source, 0..(S + 2*pad - 32)
  int32_t flip;                // mirror horizontally when 1
};

DT_HOST_DEVICE SampleDraw draw_sample(uint64_t seed, uint64_t epoch, uint64_t index,
                                      int32_t crop_range, bool random_crop, bool random_flip,
                                      int32_t center) {
  SampleDraw d;
  d.offset_y = random_crop ? int32_t(sample_draw(seed, epoch, index, 0) % crop_range) : center;
  d.offset_x = random_crop ? int32_t(sample_draw(seed, epoch, index, 1) % crop_range) : center;
  d.flip = random_flip ? int32_t(sample_draw(seed, epoch, index, 2) & 1) : 0;
  return d;
}

}  // namespace dt::data
