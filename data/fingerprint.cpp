#include "data/fingerprint.h"

#include "common/fnv1a.h"

namespace dt::data {

// Not cryptographic: it guards against accidents (another copy of the files), not adversaries.
uint64_t fingerprint(const Dataset& set) {
  uint64_t h = common::kFnv1aBasis;
  for (const auto& t : {set.images, set.labels}) {
    if (!t.defined()) continue;
    const auto c = t.cpu().contiguous();
    h = common::fnv1a_words(c.data_ptr(), size_t(c.numel()) * c.element_size(), h);
  }
  return h;
}

}  // namespace dt::data
