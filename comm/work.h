// A handle to an asynchronous collective, and the deadline every wait on one obeys.
//
// Contract: wait() returns when the result may be used by the caller's next operation and
// throws CommTimeout (naming the rank, the operation and the deadline) if the collective has not
// completed in time. On CPU (MPI) that means the data is ready. On CUDA (NCCL) it means the
// caller's current stream is ordered after the collective (an event, no host synchronisation);
// the deadline is then enforced by the NCCL backend's watchdog.
#pragma once
#include <chrono>
#include <memory>
#include <string>

namespace dt::comm {

using Clock = std::chrono::steady_clock;

class Work {
 public:
  virtual ~Work() = default;
  // Drives progress; true once the collective has completed.
  virtual bool test() = 0;
  // See the contract above.
  virtual void wait() = 0;
  // What it is, for messages and traces ("all_reduce #12 (8192 x float)").
  virtual std::string describe() const = 0;
};

// A collective that needed no communication (world of one).
class CompletedWork : public Work {
 public:
  explicit CompletedWork(std::string what) : what_(std::move(what)) {}
  bool test() override { return true; }
  void wait() override {}
  std::string describe() const override { return what_; }

 private:
  std::string what_;
};

}  // namespace dt::comm
