#include "trainer/checkpoint/resume_check.h"

#include <cstdlib>
#include <map>
#include <sstream>
#include "trainer/checkpoint/errors.h"

namespace dt::trainer {
namespace {

std::vector<std::pair<std::string, std::string>> settings(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find(" = ");
    if (eq != std::string::npos) out.emplace_back(line.substr(0, eq), line.substr(eq + 3));
  }
  return out;
}

}  // namespace

void check_resumable(const std::string& file, const TrainingState& saved, const TrainingState& now) {
  if (saved.samples_done == 0) return;  // at an epoch boundary any data and seed can follow
  const std::string where = file + ": stopped " + std::to_string(saved.samples_done) +
                            " samples into epoch " + std::to_string(saved.epoch + 1);
  const std::string why = "; the rest of that epoch would skip some samples and repeat others "
                          "(resume from an end-of-epoch checkpoint, epoch_N.pt, to change it)";
  if (saved.train_size > 0 && saved.train_size != now.train_size) {
    throw CheckpointError(where + " of a " + std::to_string(saved.train_size) +
                          "-sample training set, this run's has " +
                          std::to_string(now.train_size) + why);
  }
  if (saved.train_size > 0 && saved.seed != now.seed) {
    throw CheckpointError(where + " with --seed " + std::to_string(saved.seed) +
                          ", this run has --seed " + std::to_string(now.seed) + why);
  }
  if (saved.samples_done >= now.train_size) {
    throw CheckpointError(where + ", past the end of this run's " +
                          std::to_string(now.train_size) + "-sample training set");
  }
}

std::string global_batch_note(const std::string& file, const TrainingState& saved,
                              const TrainingState& now) {
  if (saved.global_batch == 0) return "";
  const std::string g = std::to_string(saved.global_batch);
  if (saved.global_batch == now.global_batch) {
    return "resume: the global batch of " + g + " images per step is kept (" +
           std::to_string(saved.world_size) + " rank(s) wrote " + file + ", " +
           std::to_string(now.world_size) + " continue): the steps go on as the uninterrupted run's";
  }
  return "resume: the global batch changes from " + g + " images per step (" + file + ") to " +
         std::to_string(now.global_batch) + ": the steps from here differ from the uninterrupted "
         "run's (--global-batch-size " + g + " keeps them on any world size that divides it)";
}

namespace {
// Equal texts, or equal numbers: files written before numbers printed in their shortest form
// say 0.90000000000000002 for 0.9.
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}
}  // namespace

std::vector<std::string> changed_settings(const std::string& saved, const std::string& now) {
  std::map<std::string, std::string> before;
  for (auto& [key, value] : settings(saved)) before[key] = value;
  std::vector<std::string> out;
  for (const auto& [key, value] : settings(now)) {
    auto it = before.find(key);
    if (key == "resume" || it == before.end() || same_value(it->second, value)) continue;
    out.push_back(key + ": " + it->second + " -> " + value);
  }
  return out;
}

std::string with_implicit_settings(const std::string& saved) {
  if (saved.empty()) return saved;  // no settings recorded at all: nothing to compare
  for (const auto& [key, value] : settings(saved)) {
    if (key == "normalize") return saved;
  }
  return saved + (saved.back() == '\n' ? "" : "\n") + "normalize = cifar\n";
}

}  // namespace dt::trainer
