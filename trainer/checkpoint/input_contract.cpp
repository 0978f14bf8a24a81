#include "trainer/checkpoint/input_contract.h"

#include <cmath>
#include "trainer/checkpoint/errors.h"

namespace dt::trainer {
namespace {

constexpr double kScale = 1.0 / 255.0;
constexpr const char* kLayout = "NCHW RGB";
// As data/augment_kernel.h's kCifarMean/kCifarStd, written as the decimals they stand for.
constexpr std::array<double, 3> kCifarMean{0.4914, 0.4822, 0.4465};
constexpr std::array<double, 3> kCifarStd{0.2470, 0.2435, 0.2616};
constexpr std::array<double, 3> kZero{0, 0, 0};
constexpr std::array<double, 3> kOne{1, 1, 1};

// A list of Any, not c10::List<double>: the Pickler writes a typed double list through
// torch.jit._pickle.build_doublelist, which torch.load(weights_only=True) refuses.
c10::impl::GenericList list_of(const std::array<double, 3>& values) {
  c10::impl::GenericList list(c10::AnyType::get());
  for (double v : values) list.push_back(v);
  return list;
}

// The three numbers of a "mean" or "std" list, ints accepted (a Python user may write [0, 0, 0]).
std::array<double, 3> three_numbers(const c10::impl::GenericDict& entry, const std::string& key,
                                    const std::string& path) {
  auto it = entry.find(key);
  const bool is_list = it != entry.end() && it->value().isList();
  if (!is_list || it->value().toListRef().size() != 3) {
    throw CheckpointError(path + ": 'preprocess' has no '" + key + "' list of 3 numbers");
  }
  std::array<double, 3> out{};
  for (size_t c = 0; c < 3; ++c) {
    const auto& v = it->value().toListRef()[c];
    if (!v.isDouble() && !v.isInt()) {
      throw CheckpointError(path + ": 'preprocess' '" + key + "' holds a non-number");
    }
    out[c] = v.isDouble() ? v.toDouble() : double(v.toInt());
  }
  return out;
}

bool near(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  for (size_t c = 0; c < 3; ++c) {
    if (!(std::fabs(a[c] - b[c]) <= 1e-6)) return false;  // NaN is never near
  }
  return true;
}

}  // namespace

c10::impl::GenericDict preprocess_entry(data::Normalization n) {
  TORCH_CHECK(n != data::Normalization::Auto, "preprocess_entry: normalisation not resolved");
  const bool cifar = n == data::Normalization::Cifar;
  c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
  entry.insert("scale", kScale);
  entry.insert("mean", list_of(cifar ? kCifarMean : kZero));
  entry.insert("std", list_of(cifar ? kCifarStd : kOne));
  entry.insert("layout", std::string(kLayout));
  return entry;
}

data::Normalization normalization_of(const c10::IValue& value, const std::string& path) {
  if (!value.isGenericDict()) throw CheckpointError(path + ": 'preprocess' is not a dict");
  const auto entry = value.toGenericDict();
  auto scale = entry.find("scale");
  auto layout = entry.find("layout");
  if (scale == entry.end() || !scale->value().isDouble() ||
      !(std::fabs(scale->value().toDouble() - kScale) <= 1e-9)) {
    throw CheckpointError(path + ": 'preprocess' needs 'scale' 1/255 (dist_train reads 8-bit images)");
  }
  if (layout == entry.end() || !layout->value().isString() || layout->value().toStringRef() != kLayout) {
    throw CheckpointError(path + ": 'preprocess' needs 'layout' \"" + kLayout + "\"");
  }
  const auto mean = three_numbers(entry, "mean", path), stdv = three_numbers(entry, "std", path);
  if (near(mean, kCifarMean) && near(stdv, kCifarStd)) return data::Normalization::Cifar;
  if (near(mean, kZero) && near(stdv, kOne)) return data::Normalization::None;
  throw CheckpointError(path + ": 'preprocess' has a mean and std dist_train cannot apply (it "
                               "applies the CIFAR-10 ones, or mean 0 and std 1)");
}

EvalInput eval_normalization(data::Normalization requested, std::optional<data::Normalization> stored,
                             bool dist_train_file, data::Normalization fresh, const std::string& path) {
  TORCH_CHECK(fresh != data::Normalization::Auto, "eval_normalization: `fresh` not resolved");
  const bool given = requested != data::Normalization::Auto;
  if (stored) {
    if (given && requested != *stored) {
      throw CheckpointError(path + " was trained with --normalize " + name_of(*stored) +
                            " (its 'preprocess' entry): --normalize " + name_of(requested) +
                            " contradicts it (leave the flag out)");
    }
    return {*stored, InputSource::Stored};
  }
  if (given) return {requested, InputSource::Given};
  if (dist_train_file) return {data::Normalization::Cifar, InputSource::OlderCheckpoint};
  return {fresh, InputSource::FreshRun};
}

std::string no_contract_note(const std::string& path, const EvalInput& input) {
  const std::string head = path + " has no 'preprocess' entry: evaluating with --normalize " +
                           name_of(input.normalization);
  switch (input.source) {
    case InputSource::Given:
      return head + " as given";
    case InputSource::OlderCheckpoint:
      return head + " (a dist_train checkpoint from before the entry existed: those trained on "
                    "the CIFAR-10 mean and std; give --normalize none for one trained on pixel / 255)";
    case InputSource::FreshRun:
      return head + " (a plain PyTorch state dict carries no recipe: fed as a fresh run with these "
                    "flags would be, --augment deciding; give --normalize to choose)";
    case InputSource::Stored:
      break;
  }
  return head;
}

}  // namespace dt::trainer
