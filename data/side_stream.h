// Prefetch on a CUDA side stream: the next batch is gathered and augmented on a stream of its own
// while the current step's forward and backward run on the training stream.
//
// Stream contract:
// - Construction orders the side stream after all work already queued on the training stream
//   (the upload of the source images).
// - produce(make) runs make() with the side stream current, so its copies and kernels are queued
//   there, and records the event `ready` on the side stream after them. The host never waits.
// - consume(batch) makes the caller's current stream wait on `ready` (a device-side wait), then
//   records the batch's tensors as used by that stream: the caching allocator allocated them on
//   the side stream and must not hand their memory back to it until the training stream is done.
// - The source images are only read on both streams; nothing else is shared.
#pragma once
#include <torch/torch.h>
#include <functional>
#include <memory>
#include "data/batch.h"

namespace dt::data {

class SideStream {
 public:
  explicit SideStream(torch::Device device);  // a CUDA device (CUDA builds only)
  ~SideStream();
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;

  Batch produce(const std::function<Batch()>& make);
  void consume(Batch& batch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dt::data
