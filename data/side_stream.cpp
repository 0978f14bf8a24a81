#include "data/side_stream.h"

#include <stdexcept>
#if DT_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dt::data {

#if DT_HAVE_CUDA
struct SideStream::Impl {
  explicit Impl(torch::Device d) : device(d), stream(c10::cuda::getStreamFromPool(false, d.index())) {}
  torch::Device device;
  c10::cuda::CUDAStream stream;
  at::cuda::CUDAEvent ready;
};

SideStream::SideStream(torch::Device device) : impl_(std::make_unique<Impl>(device)) {
  // What the training stream has queued so far (the upload of the source images) comes before
  // anything on the side stream: a host-to-device copy from pageable memory may still be in
  // flight when the host moves on.
  at::cuda::CUDAEvent uploaded;
  uploaded.record(c10::cuda::getCurrentCUDAStream(device.index()));
  uploaded.block(impl_->stream);
}

// Queued work may still read the loader's source images, which were allocated on the training
// stream and are freed after this: let it finish first (teardown only, never on the hot path).
SideStream::~SideStream() {
  try {
    impl_->stream.synchronize();
  } catch (...) {  // a failed device is reported by whatever uses it next; never throw here
  }
}

Batch SideStream::produce(const std::function<Batch()>& make) {
  c10::cuda::CUDAStreamGuard guard(impl_->stream);
  Batch b = make();
  impl_->ready.record(impl_->stream);
  return b;
}

void SideStream::consume(Batch& batch) {
  auto consumer = c10::cuda::getCurrentCUDAStream(impl_->device.index());
  impl_->ready.block(consumer);
  for (const auto* t : {&batch.images, &batch.labels}) {
    if (t->defined() && t->is_cuda()) {
      c10::cuda::CUDACachingAllocator::recordStream(t->storage().data_ptr(), consumer);
    }
  }
}
#else
struct SideStream::Impl {};
SideStream::~SideStream() = default;
SideStream::SideStream(torch::Device) {
  throw std::logic_error("SideStream: this build has no CUDA support");
}
Batch SideStream::produce(const std::function<Batch()>& make) { return make(); }
void SideStream::consume(Batch&) {}
#endif

}  // namespace dt::data
