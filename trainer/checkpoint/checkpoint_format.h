// PyTorch's torch.save format, which checkpoints and replica-check dumps are written in: a zip
// container (PyTorchStreamWriter) holding an untagged pickle, so Python's torch.load with its
// default weights_only=True reads them.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>

namespace dt::trainer {

// The bytes torch.save would write for `value` (zip container, untagged pickle).
std::vector<char> torch_save_bytes(const c10::IValue& value);
// Parses torch.save bytes; throws CheckpointError naming `name` on anything malformed.
c10::IValue torch_load_bytes(const std::vector<char>& bytes, const std::string& name);

}  // namespace dt::trainer
