// FNV-1a, 64 bit: the one hash for what ranks and files compare (configuration text, model
// structure, checkpoint contents). Stable across builds, hosts and runs, unlike std::hash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace dt::common {

constexpr uint64_t kFnv1aBasis = 1469598103934665603ULL;
constexpr uint64_t kFnv1aPrime = 1099511628211ULL;

// Continues hash `h` over `n` bytes (start from kFnv1aBasis).
inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnv1aBasis) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnv1aPrime;
  return h;
}

// The same over 8-byte words (then the last bytes, then the length): eight times fewer dependent
// multiplies, for bulk data such as a dataset's 180 MB. A different hash from fnv1a's.
inline uint64_t fnv1a_words(const void* data, size_t n, uint64_t h = kFnv1aBasis) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * kFnv1aPrime;
  }
  return (fnv1a(p + i, n - i, h) ^ n) * kFnv1aPrime;
}

inline uint64_t fnv1a(std::string_view text, uint64_t h = kFnv1aBasis) {
  return fnv1a(text.data(), text.size(), h);
}

}  // namespace dt::common
