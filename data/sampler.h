// Sharded, per-epoch shuffled sampling of sample indices.
//
// Contract: epoch e uses one permutation of the dataset drawn from (seed, e). Step s covers the
// global batch perm[o + s*B*W, o + (s+1)*B*W) (o = 0 except in an epoch resumed part-way) (B = batch per rank, W = world size), and rank r takes its
// B-slice of it. So every rank runs the same number of steps, shards are disjoint, and where the
// global batch divides the same samples meet in the same global step whatever W is. The tail that
// does not fill a global batch is dropped (drop_last) or padded by wrapping to the permutation's
// start. The epoch is a parameter of every call: there is no set_epoch to forget.
#pragma once
#include <torch/torch.h>
#include <cstdint>

namespace dt::data {

struct ShardSpec {
  int64_t dataset_size = 0;
  int64_t world_size = 1;
  int64_t rank = 0;
  int64_t batch_per_rank = 1;
  bool drop_last = true;
  uint64_t seed = 0;
};

class ShardedSampler {
 public:
  // Throws DataError when the global batch is larger than the dataset, or the spec is invalid.
  explicit ShardedSampler(const ShardSpec& spec);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Steps of `epoch`: fewer for an epoch resumed part-way (see resume_at).
  int64_t steps_in_epoch(int64_t epoch) const;
  // Resumes `epoch` after `samples_done` of its permutation were consumed (by a run of any world
  // size): its remaining samples are sharded over this world, from that point on.
  void resume_at(int64_t epoch, int64_t samples_done);
  int64_t global_batch() const { return spec_.batch_per_rank * spec_.world_size; }
  // Samples of the padded tail (repeats) per epoch; 0 with drop_last or when it divides.
  int64_t padded_per_epoch() const;
  int64_t dropped_per_epoch() const;
  const ShardSpec& spec() const { return spec_; }

  // The permutation of epoch `epoch` (int64, [dataset_size]).
  torch::Tensor permutation(int64_t epoch) const;
  // This rank's indices for (epoch, step), int64 [batch_per_rank].
  torch::Tensor indices(int64_t epoch, int64_t step) const;
  // Any rank's indices, for tests and simulations of several ranks in one process.
  torch::Tensor indices_for_rank(int64_t epoch, int64_t step, int64_t rank) const;

 private:
  ShardSpec spec_;
  int64_t steps_per_epoch_ = 0;
  int64_t resume_epoch_ = -1, resume_offset_ = 0;
  int64_t offset(int64_t epoch) const { return epoch == resume_epoch_ ? resume_offset_ : 0; }
  mutable int64_t cached_epoch_ = -1;
  mutable torch::Tensor cached_perm_;
};

// splitmix64-style mixing, shared by the sampler and per-sample augmentation draws.
uint64_t mix_seed(uint64_t seed, uint64_t salt);

}  // namespace dt::data
