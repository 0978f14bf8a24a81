#include "trainer/checkpoint/checkpoint_validation.h"

#include <sstream>
#include "common/fnv1a.h"
#include "trainer/checkpoint/errors.h"

namespace dt::trainer {
namespace {

void mix(uint64_t& h, const void* data, size_t n) { h = common::fnv1a(data, n, h); }

void mix_tensor(uint64_t& h, const std::string& key, const torch::Tensor& t) {
  mix(h, key.data(), key.size());
  auto c = t.contiguous();
  mix(h, c.data_ptr(), c.nbytes());
}

void mix_string(uint64_t& h, const std::string& s) {
  const uint64_t n = s.size();
  mix(h, &n, sizeof(n));
  mix(h, s.data(), s.size());
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

// Format 2 covers the position and settings too: a resume trusts them as much as the weights.
// Format 1 files (state == nullptr) covered the tensors only.
uint64_t checkpoint_checksum(const c10::Dict<std::string, torch::Tensor>& model,
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
    // Only when present: files written before the entry existed keep their checksum.
    if (state->input) mix_string(h, std::string("preprocess ") + name_of(*state->input));
    if (state->global_batch > 0) {
      mix_string(h, "global_batch");
      mix(h, &state->global_batch, sizeof(state->global_batch));
    }
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

void check_weights(const c10::Dict<std::string, torch::Tensor>& weights,
                   const torch::nn::Module& model, const std::string& path) {
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
}

void check_position(const TrainingState& st, const std::string& path) {
  if (st.epoch < 0 || st.step < 0 || st.samples_done < 0 || st.world_size < 1 ||
      st.train_size < 0 || (st.train_size > 0 && st.samples_done >= st.train_size) || st.global_batch < 0 ||
      !(st.best_accuracy >= 0 && st.best_accuracy <= 1)) {
    throw CheckpointError(path + ": impossible training position (epoch " +
                          std::to_string(st.epoch) + ", step " + std::to_string(st.step) +
                          ", samples done " + std::to_string(st.samples_done) + ", world size " +
                          std::to_string(st.world_size) + ")");
  }
}

void check_optimizer_tensor(const torch::Tensor& t, const char* name, int64_t i,
                            const torch::Tensor& p, const std::string& path) {
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
}

void check_optimizer_step(int64_t step, int64_t i, const std::string& path) {
  if (step < 0) {
    throw CheckpointError(path + ": optimizer state 'step' of parameter " + std::to_string(i) +
                          " is negative (" + std::to_string(step) + ")");
  }
}

}  // namespace dt::trainer
