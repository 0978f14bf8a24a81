// FNV-1a, 64 bit: the one hash for what ranks and files compare (configuration text, model
// structure, checkpoint contents). Stable across builds, hosts and runs, unlike std::hash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dt::comm {

constexpr uint64_t kFnv1aBasis = 1469598103934665603ULL;

// Continues hash `h` over `n` bytes (start from kFnv1aBasis).
inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnv1aBasis) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

inline uint64_t fnv1a(std::string_view text, uint64_t h = kFnv1aBasis) {
  return fnv1a(text.data(), text.size(), h);
}

}  // namespace dt::comm
