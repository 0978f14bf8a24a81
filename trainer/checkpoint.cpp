#include "trainer/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <fcntl.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include "common/fnv1a.h"
#include "data/regular_file.h"
#include "trainer/errors.h"

namespace dt::trainer {
namespace {

constexpr const char* kFormat = "dist_train/2";
constexpr const char* kFormatV1 = "dist_train/1";  // still read: no seed, train_size; see checksum_of

[[noreturn]] void fail_io(const std::string& what, const std::string& path) {
  throw CheckpointError(what + " " + path + ": " + std::strerror(errno));
}

void mix(uint64_t& h, const void* data, size_t n) { h = common::fnv1a(data, n, h); }

void mix_tensor(uint64_t& h, const std::string& key, const torch::Tensor& t) {
  mix(h, key.data(), key.size());
  auto c = t.contiguous();
  mix(h, c.data_ptr(), c.nbytes());
}

// The tensors of the optimizer's per-parameter state, by parameter index, Python's names.
c10::impl::GenericDict optimizer_state(const torch::optim::Optimizer& opt, const std::string& kind) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  const auto& params = opt.param_groups().at(0).params();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = opt.state().find(params[i].unsafeGetTensorImpl());
    if (it == opt.state().end()) continue;
    c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
    if (kind == "adam") {
      const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
      entry.insert("step", s.step());
      entry.insert("exp_avg", s.exp_avg().detach().cpu().contiguous());
      entry.insert("exp_avg_sq", s.exp_avg_sq().detach().cpu().contiguous());
    } else {
      const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
      if (!s.momentum_buffer().defined()) continue;
      entry.insert("momentum_buffer", s.momentum_buffer().detach().cpu().contiguous());
    }
    state.insert(int64_t(i), entry);
  }
  return state;
}

void mix_string(uint64_t& h, const std::string& s) {
  const uint64_t n = s.size();
  mix(h, &n, sizeof(n));
  mix(h, s.data(), s.size());
}

// Format 2 covers the position and settings too: a resume trusts them as much as the weights.
// Format 1 files (state == nullptr) covered the tensors only.
uint64_t checksum_of(const c10::Dict<std::string, torch::Tensor>& model,
                     const c10::impl::GenericDict& opt_state, const TrainingState* state,
                     const std::string& optimizer_kind) {
  uint64_t h = common::kFnv1aBasis;
  if (state) {
    for (int64_t v : {state->epoch, state->samples_done, state->step, state->world_size,
                      state->seed, state->train_size}) {
      mix(h, &v, sizeof(v));
    }
    mix(h, &state->best_accuracy, sizeof(state->best_accuracy));
    mix_string(h, state->config);
    mix_string(h, state->model_name);
    mix_string(h, optimizer_kind);
  }
  for (const auto& kv : model) mix_tensor(h, kv.key(), kv.value());
  for (const auto& kv : opt_state) {
    const int64_t idx = kv.key().toInt();
    mix(h, &idx, sizeof(idx));
    for (const auto& e : kv.value().toGenericDict()) {
      if (e.value().isTensor()) mix_tensor(h, e.key().toStringRef(), e.value().toTensor());
      if (e.value().isInt()) {
        const int64_t v = e.value().toInt();
        mix(h, &v, sizeof(v));
      }
    }
  }
  return h;
}

std::vector<char> read_file(const std::string& path) {
  if (const auto problem = data::regular_file_problem(path); !problem.empty()) {
    throw CheckpointError(path + (problem == "no such file" ? ": no such checkpoint file"
                                                            : ": cannot read a checkpoint from it: " + problem));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_io("cannot open", path);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), {});
}

const c10::IValue& require(const c10::impl::GenericDict& d, const std::string& key,
                           const std::string& path) {
  auto it = d.find(key);
  if (it == d.end()) throw CheckpointError(path + ": checkpoint has no '" + key + "' entry");
  return it->value();
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape(const torch::Tensor& t) {
  std::ostringstream o;
  o << t.sizes();
  return o.str();
}

}  // namespace

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

}  // namespace

c10::IValue torch_load_bytes(const std::vector<char>& bytes, const std::string& name) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BoundedReader>(bytes));
    return torch::jit::readArchiveAndTensors("data", "", "", std::nullopt, std::nullopt,
                                             at::Device(at::kCPU), reader);
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    if (why.find("Expected GenericDict") != std::string::npos) {
      why = "a collections.OrderedDict inside (LibTorch reads plain dicts: from Python, save "
            "{\"model\": dict(model.state_dict())})";
    }
    throw CheckpointError(name + ": not a readable PyTorch checkpoint (truncated, corrupt or "
                                 "another format): " + why);
  }
}

void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  const auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::create_directories(dir, ec) && ec) {
    throw CheckpointError("cannot create the folder " + dir.string() + ": " + ec.message());
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail_io("cannot create", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      fail_io("cannot write", tmp);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_io("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail_io("cannot rename onto", path);
  }
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::vector<char> checkpoint_bytes(const torch::nn::Module& model,
                                   const torch::optim::Optimizer* optimizer,
                                   const std::string& optimizer_kind, const TrainingState& st) {
  auto weights = state_dict(model);
  c10::impl::GenericDict opt_state(c10::IntType::get(), c10::AnyType::get());
  if (optimizer) opt_state = optimizer_state(*optimizer, optimizer_kind);
  c10::impl::GenericDict opt(c10::StringType::get(), c10::AnyType::get());
  opt.insert("kind", optimizer_kind);
  opt.insert("state", opt_state);

  c10::impl::GenericDict rng(c10::StringType::get(), c10::AnyType::get());
  rng.insert("torch_cpu", at::detail::getDefaultCPUGenerator().get_state());

  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("format", std::string(kFormat));
  dict.insert("model", weights);
  dict.insert("optimizer", opt);
  dict.insert("epoch", st.epoch);
  dict.insert("samples_done", st.samples_done);
  dict.insert("step", st.step);
  dict.insert("best_accuracy", st.best_accuracy);
  dict.insert("world_size", st.world_size);
  dict.insert("config", st.config);
  dict.insert("model_name", st.model_name);
  dict.insert("seed", st.seed);
  dict.insert("train_size", st.train_size);
  dict.insert("rng", rng);
  dict.insert("checksum", int64_t(checksum_of(weights, opt_state, &st, optimizer_kind)));
  return torch_save_bytes(dict);
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const std::string& optimizer_kind,
                     const TrainingState& state) {
  write_file_atomically(path, checkpoint_bytes(model, optimizer, optimizer_kind, state));
}

LoadedCheckpoint load_checkpoint(const std::string& path, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer,
                                 const std::string& optimizer_kind) {
  return load_checkpoint_bytes(read_file(path), path, model, optimizer, optimizer_kind);
}

namespace {

LoadedCheckpoint load_checkpoint_unchecked(const std::vector<char>& bytes, const std::string& path,
                                           torch::nn::Module& model,
                                           torch::optim::Optimizer* optimizer,
                                           const std::string& optimizer_kind) {
  auto value = torch_load_bytes(bytes, path);
  if (!value.isGenericDict()) throw CheckpointError(path + ": not a checkpoint dict");
  auto dict = value.toGenericDict();
  const auto& model_iv = require(dict, "model", path);
  if (!model_iv.isGenericDict()) throw CheckpointError(path + ": 'model' is not a state dict");

  // Validate everything before touching the model: names and shapes (values are converted to
  // the model's dtype on copy).
  c10::Dict<std::string, torch::Tensor> weights;
  for (const auto& kv : model_iv.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor()) {
      throw CheckpointError(path + ": 'model' holds a non-tensor entry");
    }
    weights.insert(kv.key().toStringRef(), kv.value().toTensor());
  }
  auto mine = state_dict(model);
  const auto parameters = model.named_parameters();
  for (const auto& kv : mine) {
    auto it = weights.find(kv.key());
    if (it == weights.end()) {
      throw CheckpointError(path + ": checkpoint is for another model: it lacks '" + kv.key() + "'");
    }
    if (!it->value().sizes().equals(kv.value().sizes())) {
      throw CheckpointError(path + ": checkpoint is for another model: '" + kv.key() + "' is " +
                            shape(it->value()) + " there, " + shape(kv.value()) + " here");
    }
    // Weights and running statistics must be real numbers. num_batches_tracked is left alone:
    // LibTorch's Module::to(dtype) makes it floating point here, PyTorch saves it as int64.
    const bool statistic = ends_with(kv.key(), "running_mean") || ends_with(kv.key(), "running_var");
    if ((parameters.find(kv.key()) != nullptr || statistic) && !it->value().is_floating_point()) {
      throw CheckpointError(path + ": '" + kv.key() + "' is of type " +
                            std::string(c10::toString(it->value().scalar_type())) + ", expected " +
                            std::string(c10::toString(kv.value().scalar_type())));
    }
  }
  for (const auto& kv : weights) {
    if (mine.find(kv.key()) == mine.end()) {
      throw CheckpointError(path + ": checkpoint is for another model: unexpected '" + kv.key() + "'");
    }
    // Values no run of ours writes (it never checkpoints a non-finite loss's weights), and that
    // would otherwise surface later as a diverged run or a chance-level score.
    const auto& t = kv.value();
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) {
      throw CheckpointError(path + ": '" + kv.key() + "' holds non-finite values (NaN or Inf)");
    }
    if (t.is_floating_point() && ends_with(kv.key(), "running_var") && (t < 0).any().item<bool>()) {
      throw CheckpointError(path + ": '" + kv.key() + "' holds a negative variance");
    }
  }

  LoadedCheckpoint out;
  c10::impl::GenericDict opt_state(c10::IntType::get(), c10::AnyType::get());
  const bool full = dict.contains("format");
  if (full) {
    const std::string format = require(dict, "format", path).toStringRef();
    const bool v1 = format == kFormatV1;
    if (format != kFormat && !v1) {
      throw CheckpointError(path + ": unsupported checkpoint format '" + format + "' (expected " +
                            kFormat + ")");
    }
    auto opt = require(dict, "optimizer", path).toGenericDict();
    opt_state = require(opt, "state", path).toGenericDict();
    const std::string kind = require(opt, "kind", path).toStringRef();
    auto& st = out.state;
    st.epoch = require(dict, "epoch", path).toInt();
    st.samples_done = require(dict, "samples_done", path).toInt();
    st.step = require(dict, "step", path).toInt();
    st.best_accuracy = require(dict, "best_accuracy", path).toDouble();
    st.world_size = require(dict, "world_size", path).toInt();
    st.config = require(dict, "config", path).toStringRef();
    st.model_name = require(dict, "model_name", path).toStringRef();
    if (!v1) {
      st.seed = require(dict, "seed", path).toInt();
      st.train_size = require(dict, "train_size", path).toInt();
    }
    const uint64_t stored = uint64_t(require(dict, "checksum", path).toInt());
    if (stored != checksum_of(weights, opt_state, v1 ? nullptr : &st, kind)) {
      throw CheckpointError(path + ": checksum mismatch: the file is corrupt");
    }
    // Sane even where the checksum matches: a v1 file's position was never covered by it.
    if (st.epoch < 0 || st.step < 0 || st.samples_done < 0 || st.world_size < 1 ||
        st.train_size < 0 || (st.train_size > 0 && st.samples_done >= st.train_size) ||
        !(st.best_accuracy >= 0 && st.best_accuracy <= 1)) {
      throw CheckpointError(path + ": impossible training position (epoch " +
                            std::to_string(st.epoch) + ", step " + std::to_string(st.step) +
                            ", samples done " + std::to_string(st.samples_done) + ", world size " +
                            std::to_string(st.world_size) + ")");
    }
    if (optimizer && kind != optimizer_kind) {
      throw CheckpointError(path + ": checkpoint was trained with --optimizer " + kind +
                            ", this run uses " + optimizer_kind);
    }
    out.full = true;
  }

  // Build the optimizer states and check the RNG state first: nothing is modified until the
  // whole file has been validated.
  std::vector<std::pair<void*, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  torch::Tensor cpu_rng;
  if (full && optimizer) {
    const auto& ps = optimizer->param_groups().at(0).params();
    for (const auto& kv : opt_state) {
      const int64_t i = kv.key().toInt();
      if (i < 0 || size_t(i) >= ps.size()) {
        throw CheckpointError(path + ": optimizer state for an unknown parameter");
      }
      auto e = kv.value().toGenericDict();
      const auto& p = ps[size_t(i)];
      auto state_tensor = [&](const char* name) {
        auto t = require(e, name, path).toTensor();
        if (!t.sizes().equals(p.sizes())) {
          throw CheckpointError(path + ": optimizer state '" + name + "' of parameter " +
                                std::to_string(i) + " has the wrong shape");
        }
        if (!t.is_floating_point()) {
          throw CheckpointError(path + ": optimizer state '" + name + "' of parameter " +
                                std::to_string(i) + " is of type " +
                                std::string(c10::toString(t.scalar_type())));
        }
        if (!torch::isfinite(t).all().item<bool>() ||
            (std::string(name) == "exp_avg_sq" && (t < 0).any().item<bool>())) {
          throw CheckpointError(path + ": optimizer state '" + name + "' of parameter " +
                                std::to_string(i) + " holds " +
                                (std::string(name) == "exp_avg_sq" ? "negative or " : "") +
                                "non-finite values");
        }
        return t.to(p.device(), p.scalar_type()).contiguous(p.suggest_memory_format());
      };
      if (optimizer_kind == "adam") {
        auto st = std::make_unique<torch::optim::AdamParamState>();
        const int64_t step = require(e, "step", path).toInt();
        if (step < 0) {
          throw CheckpointError(path + ": optimizer state 'step' of parameter " + std::to_string(i) +
                                " is negative (" + std::to_string(step) + ")");
        }
        st->step(step);
        st->exp_avg(state_tensor("exp_avg"));
        st->exp_avg_sq(state_tensor("exp_avg_sq"));
        states.emplace_back(p.unsafeGetTensorImpl(), std::move(st));
      } else {
        auto st = std::make_unique<torch::optim::SGDParamState>();
        st->momentum_buffer(state_tensor("momentum_buffer"));
        states.emplace_back(p.unsafeGetTensorImpl(), std::move(st));
      }
    }
    if (dict.contains("rng")) {
      auto rng = dict.at("rng").toGenericDict();
      if (rng.contains("torch_cpu")) {
        cpu_rng = rng.at("torch_cpu").toTensor();
        auto probe = at::detail::createCPUGenerator();
        probe.set_state(cpu_rng);  // throws on a malformed state, before anything is changed
      }
    }
  }

  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  auto buffers = model.named_buffers();
  for (const auto& kv : weights) {
    torch::Tensor* target = params.find(kv.key());
    if (!target) target = buffers.find(kv.key());
    target->copy_(kv.value());  // onto the device (and memory format) the tensor lives in
  }
  for (auto& [key, st] : states) optimizer->state()[key] = std::move(st);
  if (cpu_rng.defined()) {
    auto gen = at::detail::getDefaultCPUGenerator();  // shares the default generator
    gen.set_state(cpu_rng);
  }
  return out;
}

}  // namespace

LoadedCheckpoint load_checkpoint_bytes(const std::vector<char>& bytes, const std::string& path,
                                       torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                                       const std::string& optimizer_kind) {
  try {
    return load_checkpoint_unchecked(bytes, path, model, optimizer, optimizer_kind);
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    // Entries of the wrong type or shape in an otherwise readable file (c10::Error, or the
    // std::out_of_range of a container lookup).
    std::string why = e.what();
    throw CheckpointError(path + ": malformed checkpoint: " + why.substr(0, why.find('\n')));
  }

}

}  // namespace dt::trainer
