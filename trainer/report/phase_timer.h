// Wall time per phase of a training step, for the end-of-run summary and benchmarks.
// Host-side timing: exact on CPU. On CUDA a phase measures the host's time in it (launches, or a
// wait where the phase synchronises); the GPU work still queued is waited for, and timed, as
// DeviceWait where the trainer synchronises anyway (the log window's loss read-back, the end of
// each epoch, before a mid-epoch checkpoint or replica check). So the step phases together count
// the steps' GPU work, not only their launches, while the split between them on CUDA is the
// host's view.
#pragma once
#include <array>
#include <chrono>
#include <string>
#include "trainer/report/trace.h"

namespace dt::trainer {

enum class Phase {
  Data, Forward, Backward, Communication, Optimizer, DeviceWait, Evaluation, Checkpoint, Verify,
  Count
};

static_assert(int64_t(Phase::Verify) == int64_t(TraceKind::Verify),
              "PhaseTimer records a Phase as the TraceKind of the same number");

const char* phase_name(Phase p);

class PhaseTimer {
 public:
  class Scope {
   public:
    Scope(PhaseTimer& t, Phase p) : t_(t), p_(p), start_(std::chrono::steady_clock::now()) {}
    ~Scope() {
      const auto end = std::chrono::steady_clock::now();
      t_.seconds_[size_t(p_)] += std::chrono::duration<double>(end - start_).count();
      if (t_.trace_) t_.trace_->add(TraceKind(p_), 0, t_.step_ ? *t_.step_ : 0, start_, end);
    }

   private:
    PhaseTimer& t_;
    Phase p_;
    std::chrono::steady_clock::time_point start_;
  };
  Scope time(Phase p) { return Scope(*this, p); }
  double seconds(Phase p) const { return seconds_[size_t(p)]; }
  // Data + forward + backward + exposed communication + optimizer + waiting for the device.
  double step_seconds() const;
  void reset() { seconds_.fill(0); }
  // Also records every timed phase in `trace`, labelled with *step.
  void attach(Trace* trace, const int64_t* step) {
    trace_ = trace;
    step_ = step;
  }

 private:
  std::array<double, size_t(Phase::Count)> seconds_{};
  Trace* trace_ = nullptr;
  const int64_t* step_ = nullptr;
};

}  // namespace dt::trainer
