// The run's checkpoints: where they go, when old ones are pruned, and resuming from one. Rank 0
// alone writes (in the background, trainer/checkpoint/checkpoint_writer.h); every rank reads its own copy
// on --resume.
#pragma once
#include <torch/torch.h>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include "model/network.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/config/config.h"

namespace dt::trainer {

class Persistence {
 public:
  Persistence(const Config& config, int rank);

  // The checkpoint --resume names (auto: CHECKPOINT_DIR/last.pt when anything has that name),
  // loaded into `net` and, unless null, `optimizer`; nothing without --resume or when auto
  // finds no file. Throws CheckpointError for a file that cannot be resumed.
  std::optional<LoadedCheckpoint> load(model::Network& net, torch::optim::Optimizer* optimizer);
  // The file load() read ("" : none).
  const std::string& resumed_from() const { return resumed_from_; }

  // Rank 0 snapshots the state now and writes it to each of `files` (in the checkpoint folder)
  // in the background; a no-op on the other ranks.
  void save(const std::vector<std::string>& files, const torch::nn::Module& net,
            const torch::optim::Optimizer* optimizer, const TrainingState& position);
  // The files of an epoch's end: last.pt, best.pt when `best`, and epoch_N.pt every
  // --checkpoint-every epochs (pruned to --keep once written).
  void save_epoch_end(int64_t epoch, bool completed, bool best, const torch::nn::Module& net,
                      const torch::optim::Optimizer* optimizer, const TrainingState& position);
  // Returns once every file written so far is on disk; rethrows a failed write.
  void wait() { writer_.wait(); }
  std::string path(const std::string& file) const;

 private:
  void prune_epoch_checkpoints() const;
  std::string checkpoint_dir_;
  std::string resume_;
  OptimizerKind optimizer_kind_;
  std::string model_;
  bool eval_only_;
  int64_t checkpoint_every_, keep_;
  int rank_;
  std::string resumed_from_;
  CheckpointWriter writer_;  // last: destroyed (and so waited for) before what its jobs use
};

}  // namespace dt::trainer
