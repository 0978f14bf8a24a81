#include "comm/reducer.h"

#include <algorithm>
#include <cmath>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include "comm/errors.h"

namespace dt::comm {

Reducer::Reducer(const torch::OrderedDict<std::string, torch::Tensor>& parameters,
                 Communicator& comm, const ReducerOptions& options)
    : params_(parameters.values()), names_(parameters.keys()), comm_(comm), options_(options) {
  bucket_of_.assign(params_.size(), 0);
  // Reverse parameter order approximates the order in which backward produces gradients.
  double cap_mb = std::min(options.first_bucket_mb, options.bucket_mb);
  Bucket current;
  int64_t current_bytes = 0;
  auto close = [&] {
    if (current.params.empty()) return;
    int64_t elements = 0;
    for (size_t i = 0; i < current.params.size(); ++i) {
      current.offsets.push_back(elements);
      elements += params_[current.params[i]].numel();
    }
    const auto& first = params_[current.params.front()];
    current.gradient_elements = elements;
    current.flat = torch::zeros({elements + int64_t(current.params.size())},
                                first.options().requires_grad(false));
    buckets_.push_back(std::move(current));
    current = Bucket{};
    current_bytes = 0;
    cap_mb = options_.bucket_mb;
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    if (!current.params.empty() &&
        (p.scalar_type() != params_[current.params.front()].scalar_type() ||
         current_bytes + int64_t(p.nbytes()) > int64_t(cap_mb * 1024 * 1024))) {
      close();
    }
    bucket_of_[k] = buckets_.size();
    current.params.push_back(k);
    current_bytes += int64_t(p.nbytes());
  }
  close();

  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    TORCH_CHECK(acc, "Reducer: parameter ", names_[k], " is not a leaf that requires grad");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs,
                  const torch::autograd::variable_list&) {
          on_gradient(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));  // keeps the accumulator (and its hook) alive
  }
}

Reducer::~Reducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

std::vector<int64_t> Reducer::bucket_sizes() const {
  std::vector<int64_t> sizes;
  for (const auto& b : buckets_) sizes.push_back(b.gradient_elements);
  return sizes;
}

void Reducer::prepare(bool sync) {
  sync_ = sync;
  armed_ = sync;
  if (!sync) return;
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.locally_unused.clear();
    b.work.reset();
  }
  next_launch_ = 0;
  timings_.assign(buckets_.size(), BucketTiming{});
}

void Reducer::on_gradient(size_t k) {
  if (!armed_) return;
  auto& b = buckets_[bucket_of_[k]];
  const auto& grad = params_[k].grad();
  size_t slot = 0;
  while (b.params[slot] != k) ++slot;
  auto view = b.flat.narrow(0, b.offsets[slot], params_[k].numel()).view(params_[k].sizes());
  if (grad.defined()) {
    view.copy_(grad);
  } else {  // the accumulator ran without a gradient (an op that returned none): unused here
    view.zero_();
    b.locally_unused.push_back(slot);
  }
  TORCH_CHECK(b.pending > 0, "Reducer: gradient of parameter ", names_[k], " arrived twice in one backward");
  --b.pending;
  if (options_.overlap) launch_ready();
  progress();
}

void Reducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch(next_launch_++);
  }
}

void Reducer::launch(size_t i) {
  auto& b = buckets_[i];
  // The flags, set on the device (no host copy): 1 for each parameter with a gradient here.
  // Divided with the gradients, they sum over ranks to the fraction of ranks that used it.
  auto flags = b.flat.narrow(0, b.gradient_elements, int64_t(b.params.size()));
  flags.fill_(1);
  for (const size_t slot : b.locally_unused) flags[int64_t(slot)].zero_();
  b.flat.div_(comm_.world_size());
  timings_[i].elements = b.gradient_elements;
  timings_[i].launched = Clock::now();
  b.work = comm_.all_reduce_async(b.flat, ReduceOp::Sum);
}

void Reducer::progress() {
  for (size_t i = 0; i < next_launch_; ++i) {
    auto& b = buckets_[i];
    if (b.work && timings_[i].completed == Clock::time_point{} && b.work->test()) {
      timings_[i].completed = Clock::now();
    }
  }
}

void Reducer::finish() {
  if (!sync_) return;
  armed_ = false;
  // A bucket still short had a parameter that took no part in this backward: it contributes
  // zeros and a "not used" flag, the same on every rank's layout, so the buckets still launch
  // in order. A gradient left from an earlier micro-batch (--accumulate) counts as used.
  for (auto& b : buckets_) {
    if (b.pending == 0) continue;
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      if (std::find(b.locally_unused.begin(), b.locally_unused.end(), slot) != b.locally_unused.end()) {
        continue;  // its hook ran without a gradient
      }
      const auto& p = params_[b.params[slot]];
      auto view = b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        view.copy_(p.grad());
      } else {
        view.zero_();
        b.locally_unused.push_back(slot);
      }
    }
    b.pending = 0;
  }
  launch_ready();
  std::vector<size_t> with_unused;  // buckets where this rank lacked some gradient
  for (size_t i = 0; i < buckets_.size(); ++i) {
    auto& b = buckets_[i];
    b.work->wait();
    if (timings_[i].completed == Clock::time_point{}) timings_[i].completed = Clock::now();
    if (!b.locally_unused.empty()) with_unused.push_back(i);
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      auto& p = params_[b.params[slot]];
      if (p.grad().defined()) {
        p.mutable_grad().copy_(b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes()));
      }
    }
  }
  if (with_unused.empty()) return;
  // Only a rank that lacked a gradient needs to know whether another rank had one: one read of
  // those buckets' flags, after every bucket is reduced.
  std::vector<torch::Tensor> flag_views;
  for (const size_t i : with_unused) {
    const auto& b = buckets_[i];
    flag_views.push_back(b.flat.narrow(0, b.gradient_elements, int64_t(b.params.size())));
  }
  const auto fractions = torch::cat(flag_views).to(torch::kCPU, torch::kFloat64);
  int64_t at = 0;
  for (const size_t i : with_unused) {
    const auto& b = buckets_[i];
    for (const size_t slot : b.locally_unused) {
      const double fraction = fractions[at + int64_t(slot)].item<double>();
      if (fraction <= 0) continue;  // no rank used it: .grad stays as it was (undefined)
      if (options_.collectives_in_backward && options_.overlap) {
        // Ranks whose autograd graphs differ may have interleaved their bucket launches with
        // those other collectives (SyncBatchNorm's) in different orders.
        throw CommError(
            "rank " + std::to_string(comm_.rank()) + ": parameter " + names_[b.params[slot]] +
            " had a gradient on " +
            std::to_string(std::lround(fraction * comm_.world_size())) + " of " +
            std::to_string(comm_.world_size()) +
            " ranks, not on this one, while other collectives (SyncBatchNorm) run during "
            "backward: buckets may launch in different orders on different ranks. Use the same "
            "parameters on every rank, or --no-overlap");
      }
      auto& p = params_[b.params[slot]];
      p.mutable_grad() = b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes()).clone(
          p.suggest_memory_format());
    }
    at += int64_t(b.params.size());
  }
}

}  // namespace dt::comm
