// --trace FILE: a Chrome trace (chrome://tracing, Perfetto) of every rank's step phases (data,
// forward, backward, exposed communication, optimizer), each gradient bucket's all-reduce from
// launch to completion, each blocking collective (agreement, results; SyncBatchNorm's on their
// own row), the moment each parameter's gradient is complete in backward, evaluation and
// checkpointing. Events are kept in memory; at the end every rank's events are gathered to
// rank 0 (two collectives), which writes the file. One process per rank: pid = rank.
// The run's facts (model, batch, parameters, BatchNorm layers, buckets) go under "otherData":
// with the events they are the step profile that launch/bench/scaling_model.py reads.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>
#include "comm/communicator.h"

namespace dt::trainer {

enum class TraceKind : int64_t {
  // The phases, in trainer::Phase's order (PhaseTimer casts one to the other).
  Data, Forward, Backward, ExposedComm, Optimizer, DeviceWait, Evaluation, Checkpoint, Verify,
  Bucket,      // one gradient bucket's all-reduce (index = bucket)
  Collective,  // a blocking collective (index = op: 0 all_reduce, 1 broadcast, 2 all_gather)
  SyncBnCollective,  // one of SyncBatchNorm's, on its own communicator (index = op, as above)
  GradientReady,     // a parameter's gradient is complete (index = parameter; start = end)
};

class Trace {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Trace(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  void add(TraceKind kind, int64_t index, int64_t step, Clock::time_point start,
           Clock::time_point end);
  // Gathers to rank 0 and writes `path` there. Every rank must call it (collectives inside).
  void write(const std::string& path, comm::Communicator* comm, int rank, int world) const;
  size_t size() const { return events_.size() / kFields; }
  // Names GradientReady events by parameter index.
  void set_parameter_names(std::vector<std::string> names) { parameter_names_ = std::move(names); }
  // A JSON object written as the file's "otherData" (rank 0's).
  void set_facts(std::string json_object) { facts_ = std::move(json_object); }

 private:
  static constexpr int64_t kFields = 5;  // kind, index, step, start_us, duration_us
  bool enabled_;
  std::vector<double> events_;
  std::vector<std::string> parameter_names_;
  std::string facts_ = "{}";
};

}  // namespace dt::trainer
