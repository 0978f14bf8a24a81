// Trainer::State: everything one replica holds (model, optimizer, loader, communicator hooks,
// position, checkpoint writer), shared by the files that build it (trainer.cpp) and drive it
// (training_loop.cpp). Private to trainer/; users see trainer.h.
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
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_writer.h"
#include "trainer/fault_injection.h"
#include "trainer/graphed_step.h"
#include "trainer/lr_schedule.h"
#include "trainer/mixed_precision.h"
#include "trainer/replica_check.h"
#include "trainer/trainer.h"

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
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<data::TrainLoader> loader;
  std::unique_ptr<data::EvalSet> eval_set;
  std::unique_ptr<comm::Reducer> reducer;  // world_size > 1
  std::unique_ptr<GraphedStep> graphed;    // --cuda-graph
  LrSchedule schedule;
  FaultInjection fault;
  bool channels_last = true;
  torch::ScalarType dtype = torch::kFloat32;  // parameters, inputs and logits
  bool bf16_autocast = false;                 // --precision bf16
  TrainingState position;  // where training stands (resumed or fresh)
  std::string resumed_from;  // the checkpoint file --resume loaded ("" : none)

  bool rank0() const { return ctx.rank == 0; }
  bool distributed() const { return ctx.comm && ctx.world_size > 1; }
  std::string path(const std::string& file) const {
    return (std::filesystem::path(config.checkpoint_dir) / file).string();
  }
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
  // Rank 0 snapshots the state now and writes it to each of `files` (in the checkpoint folder)
  // in the background, then runs `after` there.
  void save(const std::vector<std::string>& files, std::function<void()> after = {});
  void prune_epoch_checkpoints();
  EvalResult evaluate();
  TrainSummary evaluate_checkpoint();
  // Sum over ranks of a small CPU int64 tensor (flags); identity at world one.
  torch::Tensor agree(torch::Tensor flags);
  torch::Tensor global_mean(const torch::Tensor& value);
  ReplicaCheck replica_check;
  int64_t verifications = 0;
  CheckpointWriter writer;  // after everything its jobs use (config), so it is destroyed first
  void verify_replicas(PhaseTimer& timer) {
    if (!distributed() || config.verify_every == 0) return;
    auto t = timer.time(Phase::Verify);
    const bool buffers_shared = model::synced_batch_norm_count(*net) > 0;
    replica_check.verify(watched_tensors(*net, *optimizer, buffers_shared), *ctx.comm,
                         position.step, config.checkpoint_dir);
    ++verifications;
  }
};

}  // namespace dt::trainer
