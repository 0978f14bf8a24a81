// libFuzzer target: the CIFAR-10 record parser must turn any bytes into either a dataset that
// satisfies the format's invariants or a DataError; never a crash, hang or sanitizer report.
#include <cstdint>
#include "data/cifar10.h"
#include "data/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto ds = dt::data::parse_cifar10_records(data, size, "fuzz input");
    if (size_t(ds.size()) * dt::data::kCifarRecordBytes != size) __builtin_trap();
    if (ds.size() > 0 && ds.labels.max().item<int64_t>() >= dt::data::kCifarClasses) __builtin_trap();
  } catch (const dt::data::DataError&) {
  }
  return 0;
}
