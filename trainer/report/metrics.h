// Per-epoch metrics as JSON lines (metrics.jsonl), one object per line; and the one line that
// --eval-only prints.
#pragma once
#include <fstream>
#include <string>

namespace dt::trainer {

struct EpochMetrics {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, test_loss = 0, test_accuracy = 0, images_per_s = 0, seconds = 0, lr = 0;
};

// What --eval-only measured, for scripts: one JSON object, no trailing newline.
struct CheckpointEval {
  std::string checkpoint, model, eval_tta, precision;
  int64_t epochs_trained = 0;  // -1: unknown (a weights-only file), printed as null
  int64_t images = 0;
  double test_loss = 0, test_accuracy = 0, seconds = 0;
};
std::string to_json(const CheckpointEval& e);

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
