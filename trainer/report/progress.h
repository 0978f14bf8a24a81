// A one-line progress bar (step, loss, images/s, ETA), drawn only when stderr is a terminal.
#pragma once
#include <chrono>
#include <cstdint>

namespace dt::trainer {

class ProgressBar {
 public:
  explicit ProgressBar(int64_t total_steps);
  void update(int64_t step, double loss, double images_per_s);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace dt::trainer
