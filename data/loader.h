// The training loader: the whole training set resident on the training device (uint8), a sharded
// sampler, and augmentation on that device. Epochs advance by themselves; the next batch is
// prepared while the current step runs (a background thread on CPU, a side stream on CUDA: see
// data/side_stream.h) without changing any result, since every draw depends only on (seed, epoch,
// sample index).
#pragma once
#include <torch/torch.h>
#include <future>
#include <memory>
#include <optional>
#include "data/augment.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "data/side_stream.h"

namespace dt::data {

struct LoaderOptions {
  AugmentSpec augment;
  ShardSpec shard;  // dataset_size is filled from the dataset
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  bool channels_last = true;
  bool prefetch = true;
};

class TrainLoader {
 public:
  TrainLoader(const Dataset& train, const LoaderOptions& options);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // The batch at the current position, then advances (to the next epoch after the last step).
  Batch next();
  // Positions the loader so that next() returns (epoch, step).
  void seek(int64_t epoch, int64_t step);
  // Resume: `epoch` continues after `samples_done` of its samples; next() returns its first
  // remaining batch.
  void resume_at(int64_t epoch, int64_t samples_done);
  int64_t steps_per_epoch() const { return sampler_.steps_per_epoch(); }
  int64_t steps_in_epoch(int64_t epoch) const { return sampler_.steps_in_epoch(epoch); }
  const ShardedSampler& sampler() const { return sampler_; }
  // Builds the batch at a position without moving the loader. Not while a prefetch may run
  // (the loader's own thread calls it, and the sampler caches one permutation unlocked): for the
  // loader itself, and for tests of a loader built with prefetch = false.
  Batch make(int64_t epoch, int64_t step) const;

 private:
  void schedule_prefetch();
  void drop_prefetch();
  LoaderOptions options_;
  ShardedSampler sampler_;
  AugmentGeometry geometry_;
  torch::Tensor source_, labels_;  // on the training device
  int64_t epoch_ = 0, step_ = 0;
  std::future<Batch> prefetched_;             // CPU: built by a background thread
  std::unique_ptr<SideStream> side_stream_;   // CUDA: built on a side stream (declared after
                                              // source_: destroyed, and drained, before it)
  std::optional<Batch> pending_;              // CUDA: queued on the side stream
};

// Evaluation batches of a whole split: no augmentation, only the normalisation the model was
// trained with (`normalize`: CIFAR-10 mean and std; otherwise pixel / 255).
class EvalSet {
 public:
  EvalSet(const Dataset& test, torch::Device device, torch::ScalarType dtype, bool channels_last,
          bool normalize);
  int64_t size() const { return labels_.size(0); }
  // Rows [begin, end) as a batch.
  Batch slice(int64_t begin, int64_t end) const;

 private:
  torch::Tensor source_, labels_;
  AugmentGeometry geometry_;
  torch::ScalarType dtype_;
  bool channels_last_;
  bool normalize_;
};

}  // namespace dt::data
