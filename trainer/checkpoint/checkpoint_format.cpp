#include "trainer/checkpoint/checkpoint_format.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <algorithm>
#include <cstring>
#include "trainer/checkpoint/errors.h"
#include "trainer/checkpoint/pickle_rewrite.h"

namespace dt::trainer {

std::vector<char> torch_save_bytes(const c10::IValue& value) {
  // torch::pickle_save, except that containers are not tagged with their C++ types: the tags
  // (torch.jit._pickle.restore_type_tag) make Python's default torch.load(weights_only=True)
  // refuse the file.
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t n) { pickle.insert(pickle.end(), bytes, bytes + n); },
      nullptr, nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::vector<char> out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) {
      const char* b = static_cast<const char*>(bytes);
      out.insert(out.end(), b, b + n);
      return n;
    });
    torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                       writer);
    writer.writeEndOfFile();
  }
  return out;
}

namespace {

// Reads from memory and never past its end. LibTorch's own VectorReader (behind
// torch::pickle_load) copies whatever length the zip directory claims, so a truncated file makes
// it read out of bounds (found by tests/fuzz/fuzz_checkpoint under AddressSanitizer).
class BoundedReader : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReader(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - size_t(pos));
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

// torch::jit::readArchiveAndTensors("data", ...), with the pickle rewritten first so that the
// OrderedDicts of a torch.save(model.state_dict()) read as plain dicts (pickle_rewrite.h).
c10::IValue read_data_pickle(caffe2::serialize::PyTorchStreamReader& reader) {
  auto [record, size] = reader.getRecord("data.pkl");
  const std::string pickle =
      without_ordered_dicts(std::string(static_cast<const char*>(record.get()), size));
  size_t done = 0;
  auto read = [&](char* buffer, size_t n) -> size_t {
    n = std::min(n, pickle.size() - done);
    std::memcpy(buffer, pickle.data() + done, n);
    done += n;
    return n;
  };
  auto read_record = [&](const std::string& name) {
    return std::get<0>(reader.getRecord("data/" + name));  // the tensors' storages
  };
  torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, at::Device(at::kCPU));
  unpickler.set_version(reader.version());
  return unpickler.parse_ivalue();
}

}  // namespace

c10::IValue torch_load_bytes(const std::vector<char>& bytes, const std::string& name) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BoundedReader>(bytes));
    return read_data_pickle(reader);
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    throw CheckpointError(name + ": not a readable PyTorch checkpoint (truncated, corrupt or "
                                 "another format): " + why);
  }
}

}  // namespace dt::trainer
