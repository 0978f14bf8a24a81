// Where training stands: epochs, steps and samples done, and the best accuracy so far. It is what
// a checkpoint records (TrainingState) and what the loader is positioned from; the loop moves it
// only through these calls, so the record and the loader never disagree.
#pragma once
#include <cstdint>
#include "data/loader.h"
#include "trainer/checkpoint/checkpoint.h"

namespace dt::trainer {

class Position {
 public:
  Position() = default;
  // A fresh run's record: this run's identity (world size, settings, seed, data size).
  explicit Position(TrainingState fresh) : state_(std::move(fresh)) {}

  // Continues from a checkpoint's record, keeping this run's identity, and puts `loader` where
  // the checkpoint stopped (part-way through an epoch, or at the start of the next).
  void continue_from(const TrainingState& saved, data::TrainLoader& loader) {
    const TrainingState mine = state_;
    state_ = saved;
    state_.world_size = mine.world_size;
    state_.model_name = mine.model_name;
    state_.config = mine.config;
    state_.seed = mine.seed;
    state_.train_size = mine.train_size;
    state_.global_batch = mine.global_batch;
    state_.input = mine.input;  // what this run trains on, which the next checkpoint must say
    if (state_.samples_done > 0) {
      loader.resume_at(state_.epoch, state_.samples_done);
    } else {
      loader.seek(state_.epoch, 0);
    }
  }
  // --eval-only: the epochs a checkpoint says it was trained for (-1: a weights-only file).
  void set_epochs_trained(int64_t epochs) { state_.epoch = epochs; }

  // At the top of each epoch: a new epoch's permutation, unless resumed part-way into it.
  void begin_epoch(data::TrainLoader& loader) const {
    if (state_.samples_done == 0) loader.seek(state_.epoch, 0);
  }
  void step_done(int64_t global_batch) {
    ++state_.step;
    state_.samples_done += global_batch;
  }
  void epoch_done() {
    ++state_.epoch;
    state_.samples_done = 0;
  }
  // Records a test accuracy; true when it is the best so far.
  bool note_accuracy(double accuracy) {
    if (!(accuracy > state_.best_accuracy)) return false;  // NaN: no evaluation, never the best
    state_.best_accuracy = accuracy;
    return true;
  }

  const TrainingState& state() const { return state_; }
  int64_t epoch() const { return state_.epoch; }
  int64_t step() const { return state_.step; }
  int64_t samples_done() const { return state_.samples_done; }
  double best_accuracy() const { return state_.best_accuracy; }

 private:
  TrainingState state_;
};

}  // namespace dt::trainer
