#include "trainer/metrics.h"

#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace dt::trainer {
namespace {
std::string num(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  out_.open(path, std::ios::app);
  if (!out_) throw std::runtime_error("cannot open " + path);
}

void MetricsLog::write(const EpochMetrics& m) {
  out_ << "{\"epoch\": " << m.epoch << ", \"step\": " << m.step
       << ", \"train_loss\": " << num(m.train_loss) << ", \"test_loss\": " << num(m.test_loss)
       << ", \"test_accuracy\": " << num(m.test_accuracy)
       << ", \"images_per_s\": " << num(m.images_per_s) << ", \"seconds\": " << num(m.seconds)
       << ", \"lr\": " << num(m.lr) << "}\n";
  out_.flush();
}

}  // namespace dt::trainer
