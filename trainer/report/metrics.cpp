#include "trainer/report/metrics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include "trainer/report/errors.h"
#include "trainer/report/json_writer.h"

namespace dt::trainer {

std::string to_json(const CheckpointEval& e) {
  Json j;
  j["checkpoint"] = e.checkpoint;
  j["model"] = e.model;
  j["epochs_trained"] = e.epochs_trained < 0 ? Json() : Json(e.epochs_trained);
  j["eval_tta"] = e.eval_tta;
  j["precision"] = e.precision;
  j["images"] = e.images;
  j["test_loss"] = json_number(e.test_loss);
  j["test_accuracy"] = json_number(e.test_accuracy);
  j["seconds"] = json_number(e.seconds);
  return dump_line(j);
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
  Json j;
  j["epoch"] = m.epoch;
  j["step"] = m.step;
  j["train_loss"] = json_number(m.train_loss);
  j["test_loss"] = json_number(m.test_loss);
  j["test_accuracy"] = json_number(m.test_accuracy);
  j["images_per_s"] = json_number(m.images_per_s);
  j["seconds"] = json_number(m.seconds);
  j["lr"] = json_number(m.lr);
  out_ << dump_line(j) << '\n';
  out_.flush();
  if (!out_) throw OutputError(path_ + ": cannot write: " + std::strerror(errno));
}

}  // namespace dt::trainer
