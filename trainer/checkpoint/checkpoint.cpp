#include "trainer/checkpoint/checkpoint.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include "data/regular_file.h"
#include "trainer/checkpoint/checkpoint_validation.h"
#include "trainer/checkpoint/errors.h"
#include "trainer/checkpoint/input_contract.h"

namespace dt::trainer {
namespace {

constexpr const char* kFormat = "dist_train/2";
constexpr const char* kFormatV1 = "dist_train/1";  // still read: no seed, train_size; see checkpoint_checksum

// The tensors of the optimizer's per-parameter state, by parameter index, Python's names.
c10::impl::GenericDict optimizer_state(const torch::optim::Optimizer& opt, OptimizerKind kind) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  const auto& params = opt.param_groups().at(0).params();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = opt.state().find(params[i].unsafeGetTensorImpl());
    if (it == opt.state().end()) continue;
    c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
    if (kind == OptimizerKind::Adam) {
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

std::vector<char> read_file(const std::string& path) {
  if (const auto problem = data::regular_file_problem(path); !problem.empty()) {
    throw CheckpointError(path + (problem == "no such file" ? ": no such checkpoint file"
                                                            : ": cannot read a checkpoint from it: " + problem));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("cannot open " + path + ": " + std::strerror(errno));
  return std::vector<char>((std::istreambuf_iterator<char>(in)), {});
}

const c10::IValue& require(const c10::impl::GenericDict& d, const std::string& key,
                           const std::string& path) {
  auto it = d.find(key);
  if (it == d.end()) throw CheckpointError(path + ": checkpoint has no '" + key + "' entry");
  return it->value();
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

std::vector<char> checkpoint_bytes(const torch::nn::Module& model,
                                   const torch::optim::Optimizer* optimizer,
                                   OptimizerKind optimizer_kind, const TrainingState& st) {
  auto weights = state_dict(model);
  c10::impl::GenericDict opt_state(c10::IntType::get(), c10::AnyType::get());
  if (optimizer) opt_state = optimizer_state(*optimizer, optimizer_kind);
  c10::impl::GenericDict opt(c10::StringType::get(), c10::AnyType::get());
  opt.insert("kind", std::string(name_of(optimizer_kind)));
  opt.insert("state", opt_state);

  c10::impl::GenericDict rng(c10::StringType::get(), c10::AnyType::get());
  rng.insert("torch_cpu", at::detail::getDefaultCPUGenerator().get_state());

  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("format", std::string(kFormat));
  dict.insert("model", weights);
  if (st.input) dict.insert("preprocess", preprocess_entry(*st.input));
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
  if (st.global_batch > 0) dict.insert("global_batch", st.global_batch);
  dict.insert("rng", rng);
  dict.insert("checksum", int64_t(checkpoint_checksum(weights, opt_state, &st, name_of(optimizer_kind))));
  return torch_save_bytes(dict);
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, OptimizerKind optimizer_kind,
                     const TrainingState& state) {
  write_file_atomically(path, checkpoint_bytes(model, optimizer, optimizer_kind, state));
}

LoadedCheckpoint load_checkpoint(const std::string& path, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer,
                                 OptimizerKind optimizer_kind) {
  return load_checkpoint_bytes(read_file(path), path, model, optimizer, optimizer_kind);
}

namespace {

using OptimizerStates = std::vector<std::pair<void*, std::unique_ptr<torch::optim::OptimizerParamState>>>;

// The weights by name, every entry a tensor; `bare`: the file is torch.save(model.state_dict())
// itself, with no "model" around it.
c10::Dict<std::string, torch::Tensor> read_weights(const c10::impl::GenericDict& dict, bool bare,
                                                   const std::string& path) {
  const c10::IValue model_iv = bare ? c10::IValue(dict) : require(dict, "model", path);
  if (!model_iv.isGenericDict()) throw CheckpointError(path + ": 'model' is not a state dict");
  c10::Dict<std::string, torch::Tensor> weights;
  for (const auto& kv : model_iv.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor()) {
      throw CheckpointError(path + (bare ? ": neither a checkpoint (no 'model' entry) nor a state "
                                           "dict (a non-tensor entry)"
                                         : ": 'model' holds a non-tensor entry"));
    }
    weights.insert(kv.key().toStringRef(), kv.value().toTensor());
  }
  return weights;
}

// A full checkpoint's format, position and optimizer kind into `st`, its checksum verified over
// `weights` and the optimizer state, which it returns. `run_kind` (null: no optimizer, as under
// --eval-only) must match the file's.
c10::impl::GenericDict read_training_state(const c10::impl::GenericDict& dict,
                                           const c10::Dict<std::string, torch::Tensor>& weights,
                                           const OptimizerKind* run_kind, const std::string& path,
                                           TrainingState& st) {
  const std::string format = require(dict, "format", path).toStringRef();
  const bool v1 = format == kFormatV1;
  if (format != kFormat && !v1) {
    throw CheckpointError(path + ": unsupported checkpoint format '" + format + "' (expected " +
                          kFormat + ")");
  }
  auto opt = require(dict, "optimizer", path).toGenericDict();
  auto opt_state = require(opt, "state", path).toGenericDict();
  const std::string kind = require(opt, "kind", path).toStringRef();
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
    if (dict.contains("global_batch")) st.global_batch = dict.at("global_batch").toInt();
  }
  const uint64_t stored = uint64_t(require(dict, "checksum", path).toInt());
  if (stored != checkpoint_checksum(weights, opt_state, v1 ? nullptr : &st, kind)) {
    throw CheckpointError(path + ": checksum mismatch: the file is corrupt");
  }
  // Sane even where the checksum matches: a v1 file's position was never covered by it.
  check_position(st, path);
  if (run_kind && kind != name_of(*run_kind)) {
    throw CheckpointError(path + ": checkpoint was trained with --optimizer " + kind +
                          ", this run uses " + name_of(*run_kind));
  }
  return opt_state;
}

// The optimizer's per-parameter states, built and checked against its parameters (not yet
// installed).
OptimizerStates read_optimizer_states(const c10::impl::GenericDict& opt_state,
                                      const torch::optim::Optimizer& optimizer, OptimizerKind kind,
                                      const std::string& path) {
  OptimizerStates states;
  const auto& ps = optimizer.param_groups().at(0).params();
  for (const auto& kv : opt_state) {
    const int64_t i = kv.key().toInt();
    if (i < 0 || size_t(i) >= ps.size()) {
      throw CheckpointError(path + ": optimizer state for an unknown parameter");
    }
    auto e = kv.value().toGenericDict();
    const auto& p = ps[size_t(i)];
    auto state_tensor = [&](const char* name) {
      auto t = require(e, name, path).toTensor();
      check_optimizer_tensor(t, name, i, p, path);
      return t.to(p.device(), p.scalar_type()).contiguous(p.suggest_memory_format());
    };
    if (kind == OptimizerKind::Adam) {
      auto st = std::make_unique<torch::optim::AdamParamState>();
      const int64_t step = require(e, "step", path).toInt();
      check_optimizer_step(step, i, path);
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
  return states;
}

// The CPU generator's saved state, if any; a malformed one throws here, before anything changes.
torch::Tensor read_cpu_rng(const c10::impl::GenericDict& dict) {
  if (!dict.contains("rng")) return {};
  auto rng = dict.at("rng").toGenericDict();
  if (!rng.contains("torch_cpu")) return {};
  auto state = rng.at("torch_cpu").toTensor();
  auto probe = at::detail::createCPUGenerator();
  probe.set_state(state);
  return state;
}

// Installs what was validated: weights (onto the device and memory format each tensor lives in),
// optimizer states, the CPU generator.
void restore(torch::nn::Module& model, const c10::Dict<std::string, torch::Tensor>& weights,
             torch::optim::Optimizer* optimizer, OptimizerStates states, const torch::Tensor& cpu_rng) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  auto buffers = model.named_buffers();
  for (const auto& kv : weights) {
    torch::Tensor* target = params.find(kv.key());
    if (!target) target = buffers.find(kv.key());
    target->copy_(kv.value());
  }
  for (auto& [key, st] : states) optimizer->state()[key] = std::move(st);
  if (cpu_rng.defined()) {
    auto gen = at::detail::getDefaultCPUGenerator();  // shares the default generator
    gen.set_state(cpu_rng);
  }
}

// Everything is read and validated before the model, optimizer or generator is touched.
LoadedCheckpoint load_checkpoint_unchecked(const std::vector<char>& bytes, const std::string& path,
                                           torch::nn::Module& model,
                                           torch::optim::Optimizer* optimizer,
                                           OptimizerKind optimizer_kind) {
  auto value = torch_load_bytes(bytes, path);
  if (!value.isGenericDict()) throw CheckpointError(path + ": not a checkpoint dict");
  auto dict = value.toGenericDict();
  const bool bare = !dict.contains("model") && !dict.contains("format");
  const auto weights = read_weights(dict, bare, path);
  check_weights(weights, model, path);  // names and shapes (values take the model's dtype)

  LoadedCheckpoint out;
  if (!bare && dict.contains("preprocess")) {
    out.state.input = normalization_of(dict.at("preprocess"), path);
  }
  OptimizerStates states;
  torch::Tensor cpu_rng;
  if (dict.contains("format")) {
    const auto opt_state = read_training_state(dict, weights, optimizer ? &optimizer_kind : nullptr,
                                               path, out.state);
    out.full = true;
    if (optimizer) {
      states = read_optimizer_states(opt_state, *optimizer, optimizer_kind, path);
      cpu_rng = read_cpu_rng(dict);
    }
  }
  restore(model, weights, optimizer, std::move(states), cpu_rng);
  return out;
}

}  // namespace

LoadedCheckpoint load_checkpoint_bytes(const std::vector<char>& bytes, const std::string& path,
                                       torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                                       OptimizerKind optimizer_kind) {
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
