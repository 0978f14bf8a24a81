// Per-sample random draws keyed on (seed, epoch, sample index, draw number 0..3).
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

}  // namespace dt::data
