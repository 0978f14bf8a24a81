#include "trainer/report/progress.h"

#include <unistd.h>
#include <cstdio>

namespace dt::trainer {

ProgressBar::ProgressBar(int64_t total_steps)
    : total_(total_steps),
      enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(int64_t step, double loss, double images_per_s) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200) && step < total_) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = step > 0 ? elapsed * double(total_ - step) / double(step) : 0.0;
  const int width = 30;
  const int filled = total_ > 0 ? int(width * step / total_) : 0;
  char bar[width + 1];
  for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
  bar[width] = 0;
  std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f %.0f img/s ETA %02d:%02d:%02d ", bar,
               (long long)step, (long long)total_, loss, images_per_s, int(eta / 3600),
               int(eta / 60) % 60, int(eta) % 60);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_) std::fprintf(stderr, "\n");
}

}  // namespace dt::trainer
