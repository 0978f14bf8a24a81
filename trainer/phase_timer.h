// Wall time per phase of a training step, for the end-of-run summary and benchmarks.
// Host-side timing: exact on CPU; on CUDA it measures launch time unless the phase synchronises.
#pragma once
#include <array>
#include <chrono>
#include <string>
#include "trainer/trace.h"

namespace dt::trainer {

enum class Phase {
  Data, Forward, Backward, Communication, Optimizer, Evaluation, Checkpoint, Verify, Count
};

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
  // Data + forward + backward + exposed communication + optimizer.
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
