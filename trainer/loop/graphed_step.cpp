#include "trainer/loop/graphed_step.h"

#include <stdexcept>
#if DT_HAVE_CUDA
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dt::trainer {

#if DT_HAVE_CUDA
namespace {

// `later` runs what is queued on it from now on only after what `earlier` has queued so far.
void order(const c10::cuda::CUDAStream& earlier, const c10::cuda::CUDAStream& later) {
  at::cuda::CUDAEvent done;
  done.record(earlier);
  done.block(later);
}

void used_by(const torch::Tensor& t, const c10::cuda::CUDAStream& stream) {
  if (t.defined() && t.is_cuda()) {
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream);
  }
}

// Autocast's cache of bf16 weight copies is made for eager forwards; a captured graph must not
// hold on to, or free, tensors of it (PyTorch requires it off while capturing).
class AutocastCacheOff {
 public:
  AutocastCacheOff() : was_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was_); }

 private:
  bool was_;
};

}  // namespace

struct GraphedStep::Impl {
  explicit Impl(torch::Device d)
      : device(d), side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d.index())) {}
  c10::cuda::CUDAStream training() const { return c10::cuda::getCurrentCUDAStream(device.index()); }
  torch::Device device;
  c10::cuda::CUDAStream side;
  at::cuda::CUDAGraph graph;
  torch::Tensor images, labels, loss;  // the captured step's input and output
};

GraphedStep::GraphedStep(torch::Device device, GraphedStepHooks hooks, int64_t warmup_steps)
    : hooks_(std::move(hooks)), warmup_steps_(std::max<int64_t>(1, warmup_steps)) {
  if (!device.is_cuda()) throw std::logic_error("GraphedStep: needs a CUDA device");
  impl_ = std::make_unique<Impl>(device);
}

GraphedStep::~GraphedStep() = default;

void GraphedStep::capture(const torch::Tensor& images, const torch::Tensor& labels) {
  auto& m = *impl_;
  m.images = images.clone();  // same strides (channels_last stays channels_last)
  m.labels = labels.clone();
  hooks_.zero_grad();
  c10::cuda::device_synchronize();
  order(m.training(), m.side);
  {
    c10::cuda::CUDAStreamGuard guard(m.side);
    AutocastCacheOff no_cache;
    // Thread-local: other threads' CUDA calls (the NCCL watchdog's event queries) are none of
    // this capture's business; the autograd engine's device thread only queues work on `side`.
    m.graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      m.loss = hooks_.step(m.images, m.labels);
    } catch (...) {
      // End the capture so that the stream is usable for the error's clean-up; the graph is
      // discarded with this object.
      try {
        m.graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    m.graph.capture_end();
  }
  order(m.side, m.training());
  captured_ = true;
}

torch::Tensor GraphedStep::run(const torch::Tensor& images, const torch::Tensor& labels) {
  auto& m = *impl_;
  const auto training = m.training();
  if (eager_steps_ < warmup_steps_) {
    order(training, m.side);
    used_by(images, m.side);
    used_by(labels, m.side);
    torch::Tensor loss;
    {
      c10::cuda::CUDAStreamGuard guard(m.side);
      hooks_.zero_grad();
      loss = hooks_.step(images, labels);
    }
    order(m.side, training);
    used_by(loss, training);
    ++eager_steps_;
    return loss;
  }
  // The capture ran the step's host code once (and no device work): that host half stands for
  // the first replay, so `replayed` is called from the second one on.
  const bool first = !captured_;
  if (first) capture(images, labels);
  auto alike = [](const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && a.strides() == b.strides() &&
           a.scalar_type() == b.scalar_type() && a.device() == b.device();
  };
  if (!alike(images, m.images) || !alike(labels, m.labels)) {
    throw std::logic_error("GraphedStep: a batch of " + c10::str(images.sizes(), " ", images.dtype()) +
                           " after capturing one of " + c10::str(m.images.sizes(), " ", m.images.dtype()));
  }
  m.images.copy_(images);
  m.labels.copy_(labels);
  m.graph.replay();
  if (!first) hooks_.replayed();
  ++replays_;
  return m.loss.clone();
}

#else
struct GraphedStep::Impl {};
GraphedStep::GraphedStep(torch::Device, GraphedStepHooks, int64_t) {
  throw std::logic_error("GraphedStep: this build has no CUDA support");
}
GraphedStep::~GraphedStep() = default;
void GraphedStep::capture(const torch::Tensor&, const torch::Tensor&) {}
torch::Tensor GraphedStep::run(const torch::Tensor&, const torch::Tensor&) { return {}; }
#endif

}  // namespace dt::trainer
