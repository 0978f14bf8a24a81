#include "data/sampler.h"

#include "data/errors.h"
#include "data/sample_rng.h"

namespace dt::data {

uint64_t mix_seed(uint64_t seed, uint64_t salt) { return splitmix64(seed ^ splitmix64(salt)); }

ShardedSampler::ShardedSampler(const ShardSpec& spec) : spec_(spec) {
  if (spec.world_size < 1 || spec.rank < 0 || spec.rank >= spec.world_size) {
    throw DataError("sampler: rank " + std::to_string(spec.rank) + " outside world of " +
                    std::to_string(spec.world_size));
  }
  if (spec.batch_per_rank < 1) throw DataError("sampler: batch size must be >= 1");
  const int64_t global = global_batch();
  if (global > spec.dataset_size) {
    throw DataError("batch size " + std::to_string(spec.batch_per_rank) + " x " +
                    std::to_string(spec.world_size) + " ranks = " + std::to_string(global) +
                    " is larger than the dataset (" + std::to_string(spec.dataset_size) +
                    " samples): each rank's shard has only " +
                    std::to_string(spec.dataset_size / spec.world_size) + " samples");
  }
  steps_per_epoch_ = spec.drop_last ? spec.dataset_size / global
                                    : (spec.dataset_size + global - 1) / global;
}

int64_t ShardedSampler::padded_per_epoch() const {
  return spec_.drop_last ? 0 : steps_per_epoch_ * global_batch() - spec_.dataset_size;
}

int64_t ShardedSampler::dropped_per_epoch() const {
  return spec_.drop_last ? spec_.dataset_size - steps_per_epoch_ * global_batch() : 0;
}

int64_t ShardedSampler::steps_in_epoch(int64_t epoch) const {
  const int64_t left = spec_.dataset_size - offset(epoch), global = global_batch();
  if (left <= 0) return 0;
  return spec_.drop_last ? left / global : (left + global - 1) / global;
}

void ShardedSampler::resume_at(int64_t epoch, int64_t samples_done) {
  if (samples_done < 0 || samples_done > spec_.dataset_size) {
    throw DataError("resume position " + std::to_string(samples_done) + " outside the epoch of " +
                    std::to_string(spec_.dataset_size) + " samples");
  }
  resume_epoch_ = epoch;
  resume_offset_ = samples_done;
}

torch::Tensor ShardedSampler::permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    auto gen = at::detail::createCPUGenerator(mix_seed(spec_.seed, 0x5eed0000ULL + epoch));
    cached_perm_ = torch::randperm(spec_.dataset_size, gen, torch::kInt64);
    cached_epoch_ = epoch;
  }
  return cached_perm_;
}

torch::Tensor ShardedSampler::indices_for_rank(int64_t epoch, int64_t step, int64_t rank) const {
  TORCH_CHECK(step >= 0 && step < steps_in_epoch(epoch), "step ", step, " outside epoch of ",
              steps_in_epoch(epoch));
  const int64_t n = spec_.dataset_size;
  const int64_t begin = offset(epoch) + step * global_batch() + rank * spec_.batch_per_rank;
  auto positions = torch::arange(begin, begin + spec_.batch_per_rank, torch::kInt64);
  if (begin + spec_.batch_per_rank > n) positions = positions.remainder(n);  // padded tail
  return permutation(epoch).index_select(0, positions);
}

torch::Tensor ShardedSampler::indices(int64_t epoch, int64_t step) const {
  return indices_for_rank(epoch, step, spec_.rank);
}

}  // namespace dt::data
