#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <filesystem>
#include "trainer/errors.h"

namespace dt::trainer {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw CheckpointError(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

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

c10::Dict<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  // Python's order: each module's own parameters, then its own buffers, module by module.
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& m : module.named_modules()) {
    const std::string prefix = m.key().empty() ? "" : m.key() + ".";
    for (const auto& p : m.value()->named_parameters(/*recurse=*/false)) {
      dict.insert(prefix + p.key(), p.value().detach().cpu().contiguous());
    }
    for (const auto& b : m.value()->named_buffers(/*recurse=*/false)) {
      dict.insert(prefix + b.key(), b.value().detach().cpu().contiguous());
    }
  }
  return dict;
}

void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot create", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail("cannot write", tmp);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) fail("cannot fsync", tmp);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename onto", path);
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_checkpoint(const std::string& path, const torch::nn::Module& module,
                     const CheckpointMeta& meta) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("model", state_dict(module));
  dict.insert("epoch", meta.epoch);
  dict.insert("step", meta.step);
  dict.insert("world_size", meta.world_size);
  dict.insert("config", meta.config);
  write_file_atomically(path, torch_save_bytes(dict));
}

}  // namespace dt::trainer
