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

// Where --eval-only's normalisation came from.
enum class InputSource {
  Stored,         // the file's "preprocess" entry
  Given,          // --normalize, for a file without the entry
  OlderCheckpoint,  // a dist_train checkpoint written before the entry: CIFAR-10 mean and std
  FreshRun,       // a plain PyTorch state dict: what a fresh run with these flags would use
};
struct EvalInput {
  data::Normalization normalization = data::Normalization::Cifar;
  InputSource source = InputSource::Stored;
};

// --eval-only: the normalisation to evaluate `path` with. The file's entry (`stored`) decides,
// unless --normalize (`requested`, auto when not given) contradicts it: CheckpointError. A file
// without one takes the explicit --normalize, or else:
//   - a dist_train checkpoint (`dist_train_file`) written before the entry existed was trained
//     on the CIFAR-10 mean and std, the only input dist_train had then;
//   - a plain PyTorch state dict (torch.save(model.state_dict())) carries no recipe, so it is fed
//     as a fresh run with the same flags would be fed (`fresh`: --normalize auto resolved by
//     --augment; the seed recipe gives none, the seed's ToTensor()).
EvalInput eval_normalization(data::Normalization requested, std::optional<data::Normalization> stored,
                             bool dist_train_file, data::Normalization fresh, const std::string& path);
// The log line for a file without the entry: which normalisation, and why. The choice is an
// assumption about how the weights were trained, so the log says it.
std::string no_contract_note(const std::string& path, const EvalInput& input);

}  // namespace dt::trainer
