#include "data/loader.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace dt::data {

TrainLoader::TrainLoader(const Dataset& train, const LoaderOptions& options)
    : options_(options),
      sampler_([&] {
        ShardSpec s = options.shard;
        s.dataset_size = train.size();
        return s;
      }()) {
  validate(options.augment);
  auto source = prepare_source(train.images, options.augment.mode);
  geometry_ = geometry_for(options.augment, source.size(2), /*train=*/true);
  source_ = source.to(options.device).contiguous();
  labels_ = train.labels.to(options.device);
  // CPU: another core builds the next batch. CUDA: the host only queues work, so no thread is
  // needed; a side stream lets the gather and augmentation overlap the step's own kernels.
  if (options_.prefetch && options.device.is_cuda()) {
    side_stream_ = std::make_unique<SideStream>(options.device);
  }
}

TrainLoader::~TrainLoader() { drop_prefetch(); }

void TrainLoader::drop_prefetch() {
  if (prefetched_.valid()) prefetched_.wait();
  prefetched_ = {};
  pending_.reset();  // its memory is reused on the side stream only, after the queued work
}

Batch TrainLoader::make(int64_t epoch, int64_t step) const {
  Batch b;
  b.epoch = epoch;
  b.step = step;
  b.indices = sampler_.indices(epoch, step);
  // Pinned, so that the host-to-device copy is queued on the current stream without a host wait.
  auto dev_idx = options_.device.is_cuda()
                     ? b.indices.pin_memory().to(options_.device, /*non_blocking=*/true)
                     : b.indices;
  b.images = augment_batch(source_, dev_idx, geometry_, options_.augment.normalize,
                           options_.shard.seed, epoch, options_.dtype, options_.channels_last);
  b.labels = labels_.index_select(0, dev_idx);
  return b;
}

void TrainLoader::schedule_prefetch() {
  if (!options_.prefetch) return;
  const int64_t e = epoch_, s = step_;
  if (side_stream_) {
    pending_ = side_stream_->produce([this, e, s] { return make(e, s); });
  } else {
    prefetched_ = std::async(std::launch::async, [this, e, s] {
      // One core's worth: the step itself is using the intra-op threads meanwhile. (A new thread
      // would otherwise size its OpenMP team from OMP_NUM_THREADS or the core count, not from
      // --threads.) Thread-local, so the training thread's setting is untouched.
#ifdef _OPENMP
      omp_set_num_threads(1);
#endif
      return make(e, s);
    });
  }
}

Batch TrainLoader::next() {
  Batch b;
  if (pending_) {
    b = std::move(*pending_);
    pending_.reset();
    side_stream_->consume(b);
  } else if (prefetched_.valid()) {
    b = prefetched_.get();
  } else {
    b = make(epoch_, step_);
  }
  if (++step_ >= sampler_.steps_in_epoch(epoch_)) {
    step_ = 0;
    ++epoch_;
  }
  schedule_prefetch();
  return b;
}

void TrainLoader::seek(int64_t epoch, int64_t step) {
  if (epoch == epoch_ && step == step_) return;  // keep the batch prefetched for this position
  drop_prefetch();
  epoch_ = epoch;
  step_ = step;
}

void TrainLoader::resume_at(int64_t epoch, int64_t samples_done) {
  drop_prefetch();
  sampler_.resume_at(epoch, samples_done);
  epoch_ = epoch;
  step_ = 0;
}

EvalSet::EvalSet(const Dataset& test, torch::Device device, torch::ScalarType dtype,
                 bool channels_last, bool normalize)
    : source_(test.images.to(device).contiguous()),
      labels_(test.labels.to(device)),
      geometry_(geometry_for(AugmentSpec{AugmentMode::None}, test.images.size(2), false)),
      dtype_(dtype),
      channels_last_(channels_last),
      normalize_(normalize) {}

Batch EvalSet::slice(int64_t begin, int64_t end) const {
  Batch b;
  b.indices = torch::arange(begin, end, torch::kInt64);
  auto dev_idx = b.indices.to(source_.device());
  b.images = augment_batch(source_, dev_idx, geometry_, normalize_, 0, 0, dtype_, channels_last_);
  b.labels = labels_.index_select(0, dev_idx);
  return b;
}

}  // namespace dt::data
