// Trainer::State: everything one replica holds, shared by the file that builds it (trainer.cpp)
// and the one that drives it (training_loop.cpp). Its parts with rules of their own keep them
// behind their own interfaces: the position in the data (position.h), the checkpoints
// (persistence.h) and evaluation (evaluator.h). Private to trainer/; users see trainer.h.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "comm/reducer.h"
#include "data/loader.h"
#include "model/batch_norm.h"
#include "model/network.h"
#include "trainer/loop/evaluator.h"
#include "trainer/loop/fault_injection.h"
#include "trainer/loop/graphed_step.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/loop/mixed_precision.h"
#include "trainer/checkpoint/persistence.h"
#include "trainer/loop/position.h"
#include "trainer/loop/replica_check.h"
#include "trainer/loop/trainer.h"

namespace dt::trainer {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Trainer::State {
  Config config;
  RunContext ctx;
  data::Dataset train, test;
  std::shared_ptr<model::Network> net;
  std::unique_ptr<torch::optim::Optimizer> optimizer;  // none under --eval-only
  std::unique_ptr<data::TrainLoader> loader;           // none under --eval-only
  std::unique_ptr<Evaluator> evaluator;
  std::unique_ptr<comm::Reducer> reducer;  // world_size > 1
  std::unique_ptr<GraphedStep> graphed;    // --cuda-graph
  std::unique_ptr<Persistence> persistence;
  LrSchedule schedule;
  FaultInjection fault;
  bool channels_last = true;
  torch::ScalarType dtype = torch::kFloat32;  // parameters, inputs and logits
  bool bf16_autocast = false;                 // --precision bf16
  Position position;  // where training stands (resumed or fresh)
  ReplicaCheck replica_check;
  int64_t verifications = 0;

  bool rank0() const { return ctx.rank == 0; }
  // Whether every rank holds the same BatchNorm running statistics: SyncBatchNorm over the whole
  // world (not per rank, not in groups of --sync-bn-group).
  bool statistics_shared() const {
    if (model::synced_batch_norm_count(*net) == 0) return false;
    return !ctx.sync_bn_comm || ctx.sync_bn_comm->world_size() == ctx.world_size;
  }
  bool distributed() const { return ctx.comm && ctx.world_size > 1; }
  // The model's output in `dtype` (fp32 logits from a bf16 forward under --precision bf16).
  torch::Tensor logits(const torch::Tensor& images) {
    torch::Tensor out;
    {
      MixedPrecision scope(ctx.device, bf16_autocast);
      out = net->forward(images);
    }
    return out.to(dtype);
  }
  void set_up(const Config& config, const RunContext& ctx, data::Dataset train,
              data::Dataset test);
  void set_up_cuda_graph();
  void resume();
  // Rank 0 snapshots the replica now and writes it to `files` in the background.
  void save(const std::vector<std::string>& files) {
    persistence->save(files, *net, optimizer.get(), position.state());
  }
  EvalResult evaluate() {
    return evaluator->evaluate(*net, [this](const torch::Tensor& x) { return logits(x); });
  }
  TrainSummary evaluate_checkpoint();
  // Sum over ranks of a small CPU int64 tensor (flags); identity at world one.
  torch::Tensor agree(torch::Tensor flags);
  torch::Tensor global_mean(const torch::Tensor& value);
  void verify_replicas(PhaseTimer& timer) {
    if (!distributed() || config.verify_every == 0) return;
    auto t = timer.time(Phase::Verify);
    replica_check.verify(watched_tensors(*net, *optimizer, statistics_shared()), *ctx.comm,
                         position.step(), config.checkpoint_dir);
    ++verifications;
  }
};

}  // namespace dt::trainer
