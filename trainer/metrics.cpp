#include "trainer/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include "trainer/errors.h"

namespace dt::trainer {
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

namespace {
// A JSON string literal: quotes, backslashes and control characters escaped.
std::string str(const std::string& v) {
  std::string out = "\"";
  for (const unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}
}  // namespace

std::string to_json(const CheckpointEval& e) {
  return "{\"checkpoint\": " + str(e.checkpoint) + ", \"model\": " + str(e.model) +
         ", \"epochs_trained\": " + (e.epochs_trained < 0 ? "null" : std::to_string(e.epochs_trained)) +
         ", \"eval_tta\": " +
         str(e.eval_tta) + ", \"precision\": " + str(e.precision) +
         ", \"images\": " + std::to_string(e.images) + ", \"test_loss\": " + json_number(e.test_loss) +
         ", \"test_accuracy\": " + json_number(e.test_accuracy) + ", \"seconds\": " + json_number(e.seconds) + "}";
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::create_directories(parent, ec) && ec) {
    throw OutputError(parent.string() + ": cannot create the folder: " + ec.message());
  }
  out_.open(path, std::ios::app);
  if (!out_) throw OutputError(path + ": cannot open: " + std::strerror(errno));
}

void MetricsLog::write(const EpochMetrics& m) {
  out_ << "{\"epoch\": " << m.epoch << ", \"step\": " << m.step
       << ", \"train_loss\": " << json_number(m.train_loss) << ", \"test_loss\": " << json_number(m.test_loss)
       << ", \"test_accuracy\": " << json_number(m.test_accuracy)
       << ", \"images_per_s\": " << json_number(m.images_per_s) << ", \"seconds\": " << json_number(m.seconds)
       << ", \"lr\": " << json_number(m.lr) << "}\n";
  out_.flush();
  if (!out_) throw OutputError(path_ + ": cannot write: " + std::strerror(errno));
}

}  // namespace dt::trainer
