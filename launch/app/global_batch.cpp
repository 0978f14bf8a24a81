#include "launch/app/global_batch.h"

#include <string>
#include "trainer/config/errors.h"

namespace dt::launch {
namespace {

// "1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60": the divisors of n, the first few dozen of them.
std::string divisors(int64_t n) {
  std::string out;
  int shown = 0;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d != 0) continue;
    if (++shown > 24) return out + ", ... (the divisors of " + std::to_string(n) + ")";
    const bool last = d == n;
    out += (out.empty() ? "" : last ? " or " : ", ") + std::to_string(d);
  }
  return out;
}

}  // namespace

int64_t resolve_batch_per_rank(const trainer::Config& c, int world_size) {
  if (c.global_batch_size == 0) return c.batch_size;
  const int64_t micro = c.global_batch_size / c.accumulate;  // validate(): a multiple
  if (micro % world_size != 0) {
    throw trainer::ConfigError(
        "--global-batch-size " + std::to_string(c.global_batch_size) +
        (c.accumulate > 1 ? " with --accumulate " + std::to_string(c.accumulate) : "") +
        " does not split evenly over " + std::to_string(world_size) + " ranks; world sizes that "
        "would work: " + divisors(micro));
  }
  return micro / world_size;
}

}  // namespace dt::launch
