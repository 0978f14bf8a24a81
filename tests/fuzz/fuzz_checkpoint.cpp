// libFuzzer target: the checkpoint loader must turn any bytes into either a loaded model or a
// CheckpointError; never a crash, hang or sanitizer report.
#include <cstdint>
#include <vector>
#include "model/resnet.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* model = new dt::model::ResNet(dt::model::make_resnet("resnet14"));
  static auto* optimizer = new torch::optim::Adam((*model)->parameters());
  std::vector<char> bytes(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  try {
    dt::trainer::load_checkpoint_bytes(bytes, "fuzz input", **model, optimizer, dt::trainer::OptimizerKind::Adam);
  } catch (const dt::trainer::CheckpointError&) {
  }
  return 0;
}
