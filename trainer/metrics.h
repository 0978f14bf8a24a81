// Per-epoch metrics as JSON lines (metrics.jsonl), one object per line.
#pragma once
#include <fstream>
#include <string>

namespace dt::trainer {

struct EpochMetrics {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, test_loss = 0, test_accuracy = 0, images_per_s = 0, seconds = 0, lr = 0;
};

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);
  void write(const EpochMetrics& m);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace dt::trainer
