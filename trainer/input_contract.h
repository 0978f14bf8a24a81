// A checkpoint's "preprocess" entry: how a uint8 RGB image becomes the network's input, stored
// next to "model" so that a Python user needs neither dist_train's code nor its defaults:
//   x = (pixel * scale - mean[c]) / std[c],  laid out NCHW, channels in RGB order
//   {"scale": 1/255, "mean": [3 floats], "std": [3 floats], "layout": "NCHW RGB"}
// --normalize none stores mean 0 and std 1 (x = pixel / 255, the seed's ToTensor()); cifar the
// CIFAR-10 mean and std. Plain dicts, lists, floats and a string: torch.load(weights_only=True)
// reads them.
#pragma once
#include <torch/torch.h>
#include <optional>
#include <string>
#include "data/normalization.h"

namespace dt::trainer {

// The entry for a resolved normalisation (cifar or none).
c10::impl::GenericDict preprocess_entry(data::Normalization normalization);
// The normalisation an entry describes; CheckpointError (naming `path`) for an entry that is
// malformed or describes a preprocessing dist_train cannot apply.
data::Normalization normalization_of(const c10::IValue& entry, const std::string& path);

// --eval-only: the normalisation to evaluate `path` with. The file's entry (`stored`) decides,
// unless --normalize (`requested`, auto when not given) contradicts it: CheckpointError. A file
// without one (older files, a bare state dict) takes the explicit --normalize, or else CIFAR-10
// mean and std as before the entry existed.
data::Normalization eval_normalization(data::Normalization requested,
                                       std::optional<data::Normalization> stored,
                                       const std::string& path);
// The log line for a file without the entry, evaluated with `used` (`given`: by --normalize):
// the fallback is an assumption about how the weights were trained, so the log says it.
std::string no_contract_note(const std::string& path, data::Normalization used, bool given);

}  // namespace dt::trainer
