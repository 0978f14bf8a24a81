#include "trainer/loop/evaluator.h"

#include "comm/model_sync.h"
#include "model/batch_norm.h"

namespace dt::trainer {

Evaluator::Evaluator(const Config& config, const RunContext& ctx, const data::Dataset& test,
                     torch::ScalarType dtype, bool channels_last, bool statistics_shared)
    : ctx_(ctx),
      mode_(config.eval_mode),
      flip_(config.eval_tta == EvalTta::Flip),
      batch_(config.eval_batch),
      statistics_shared_(statistics_shared) {
  // The training batches' normalisation (trainer.cpp resolves it before building this).
  const bool normalize = config.normalize == data::Normalization::Cifar;
  if (test.size() > 0) {
    set_ = std::make_unique<data::EvalSet>(test, ctx.device, dtype, channels_last, normalize);
  }
}

EvalResult Evaluator::evaluate(model::Network& net, const Forward& forward) {
  const int64_t n = set_ ? set_->size() : 0;
  // rank0: rank 0 evaluates everything while the others wait in the broadcast below (with the
  // deadline). distributed: each rank evaluates a contiguous shard; the sums are reduced.
  const bool sharded = mode_ == EvalMode::Distributed && distributed();
  EvalSums sums;
  if (sharded) {
    // Per-rank (or per-group) BatchNorm lets the ranks' running statistics drift apart:
    // evaluate rank 0's model, the one that is checkpointed, not a different one on each shard.
    if (!statistics_shared_) comm::broadcast_buffers(net, *ctx_.comm);
    const int64_t begin = n * ctx_.rank / ctx_.world_size, end = n * (ctx_.rank + 1) / ctx_.world_size;
    sums = evaluate_sums(net, forward, *set_, begin, end, batch_, flip_);
  } else if (ctx_.rank == 0 && n > 0) {
    sums = evaluate_sums(net, forward, *set_, 0, n, batch_, flip_);
  }
  auto packed = torch::tensor({sums.loss_sum, double(sums.correct), double(sums.samples)},
                              torch::kFloat64);
  if (distributed()) {
    if (mode_ == EvalMode::Distributed) {
      ctx_.comm->all_reduce(packed);
    } else {
      ctx_.comm->broadcast(packed, 0);  // every rank learns the result (and the best accuracy)
    }
  }
  EvalSums total;
  total.loss_sum = packed[0].item<double>();
  total.correct = int64_t(packed[1].item<double>());
  total.samples = int64_t(packed[2].item<double>());
  return total.result();
}

}  // namespace dt::trainer
