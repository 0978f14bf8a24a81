// The gradient Reducer: the data-parallel part. Gradients are packed into flat buckets in reverse
// parameter order (the order backward produces them): a small first bucket so communication
// starts early, then buckets up to --bucket-mb. A hook on each parameter's gradient accumulator
// copies the gradient into its bucket; the moment a bucket's last gradient is in, its all-reduce
// is launched while backward continues. finish() waits for every bucket (with the deadline) and
// writes the averaged gradients back into .grad for the optimizer.
//
// Unused parameters (no gradient in this backward on some rank: a branch not taken, a head left
// out of the loss) are handled as DDP's find_unused_parameters: each bucket carries one "used"
// flag per parameter after its gradients, reduced with them. A parameter some rank used gets the
// average over all ranks (zero where unused); one that no rank used keeps its .grad as it was
// (undefined after zero_grad), so the optimizer leaves it alone: no weight decay, no momentum drift.
// A bucket holding a parameter unused here launches only in finish(), so when other collectives
// run during backward (SyncBatchNorm, options.collectives_in_backward) ranks that use different
// parameters may have issued them in different orders. That cannot be seen before it happens;
// finish() refuses it afterwards (a CommError naming the rank and parameter, before any update),
// and if the mismatched collectives hang first, the deadline ends the job. With the same
// parameters on every rank, or with --no-overlap, it is safe.
//
// Contracts: buckets are launched in index order on every rank (a bucket that is ready early
// waits for its predecessors), so collectives match across ranks. With CUDA tensors the
// hand-off is by events (see nccl_backend.h); nothing here synchronises the host with the GPU,
// except that a rank with a locally unused parameter reads those buckets' flags back once.
#pragma once
#include <torch/torch.h>
#include <memory>
#include <string>
#include <vector>
#include "comm/communicator.h"

namespace dt::comm {

struct ReducerOptions {
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  bool overlap = true;  // false: all-reduce after backward (for A/B measurement)
  // Other collectives run on the communicator during backward (SyncBatchNorm's). Then a
  // parameter used on some ranks but not others is an error with overlap on (see above).
  bool collectives_in_backward = false;
};

struct BucketTiming {
  int64_t elements = 0;
  Clock::time_point launched, completed;
};

class Reducer {
 public:
  // The parameters by name, in the module's order (module.named_parameters(), as c10d's DDP is
  // given them): the names are what its errors say.
  Reducer(const torch::OrderedDict<std::string, torch::Tensor>& parameters, Communicator& comm,
          const ReducerOptions& options);
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // Before each backward: `sync` false accumulates locally with no communication (all but the
  // last micro-batch of --accumulate).
  void prepare(bool sync);
  // After backward: launches what is left, waits for every bucket, averages over ranks and
  // writes into each parameter's .grad. No-op after a backward prepared with sync false.
  void finish();

  size_t bucket_count() const { return buckets_.size(); }
  std::vector<int64_t> bucket_sizes() const;
  // Timings of the last synchronised backward, per bucket in launch order.
  const std::vector<BucketTiming>& timings() const { return timings_; }

 private:
  struct Bucket {
    torch::Tensor flat;           // the gradients, then one "used" flag per parameter
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offsets;
    int64_t gradient_elements = 0;  // where the flags start
    size_t pending = 0;
    std::vector<size_t> locally_unused;  // slots with no gradient on this rank, this backward
    std::shared_ptr<Work> work;
  };
  void on_gradient(size_t param);
  void launch_ready();
  void launch(size_t bucket);
  void progress();

  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;  // params_[k]'s name
  Communicator& comm_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // param -> bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::vector<BucketTiming> timings_;
  size_t next_launch_ = 0;
  bool sync_ = true, armed_ = false;
};

}  // namespace dt::comm
