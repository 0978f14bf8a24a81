#include "trainer/checkpoint/persistence.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include "trainer/checkpoint/errors.h"

namespace dt::trainer {

Persistence::Persistence(const Config& config, int rank)
    : checkpoint_dir_(config.checkpoint_dir),
      resume_(config.resume),
      optimizer_kind_(config.optimizer),
      model_(config.model),
      eval_only_(config.eval_only),
      checkpoint_every_(config.checkpoint_every),
      keep_(config.keep),
      rank_(rank) {}

std::string Persistence::path(const std::string& file) const {
  return (std::filesystem::path(checkpoint_dir_) / file).string();
}

std::optional<LoadedCheckpoint> Persistence::load(model::Network& net,
                                                  torch::optim::Optimizer* optimizer) {
  if (resume_.empty()) return std::nullopt;
  std::string file = resume_;
  if (resume_ == "auto") {
    file = path("last.pt");
    // Nothing at all under that name means a fresh start; anything else (a symbolic link to a
    // missing file, say) goes to the loader, which says what is wrong with it.
    std::error_code ec;
    if (std::filesystem::symlink_status(file, ec).type() == std::filesystem::file_type::not_found) {
      if (eval_only_) throw CheckpointError("--eval-only --resume auto: no " + file + " to evaluate");
      if (rank_ == 0) spdlog::info("--resume auto: no {} yet, starting from scratch", file);
      return std::nullopt;
    }
  }
  auto loaded = load_checkpoint(file, net, optimizer, optimizer_kind_);
  if (loaded.full && loaded.state.model_name != model_) {
    throw CheckpointError(file + ": checkpoint of --model " + loaded.state.model_name +
                          ", this run is --model " + model_);
  }
  resumed_from_ = file;
  return loaded;
}

void Persistence::save(const std::vector<std::string>& files, const torch::nn::Module& net,
                       const torch::optim::Optimizer* optimizer, const TrainingState& position) {
  if (rank_ != 0) return;
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(path(f));
  writer_.write(checkpoint_bytes(net, optimizer, optimizer_kind_, position),
                std::move(paths));
}

void Persistence::save_epoch_end(int64_t epoch, bool completed, bool best,
                                 const torch::nn::Module& net,
                                 const torch::optim::Optimizer* optimizer,
                                 const TrainingState& position) {
  if (rank_ != 0) return;
  // One snapshot for all of this epoch's files, written while the next epoch trains.
  std::vector<std::string> paths{path("last.pt")};
  std::function<void()> after;
  if (best) paths.push_back(path("best.pt"));
  if (completed && checkpoint_every_ > 0 && epoch % checkpoint_every_ == 0) {
    paths.push_back(path("epoch_" + std::to_string(epoch) + ".pt"));
    after = [this] { prune_epoch_checkpoints(); };
  }
  writer_.write(checkpoint_bytes(net, optimizer, optimizer_kind_, position),
                std::move(paths), std::move(after));
}

void Persistence::prune_epoch_checkpoints() const {
  if (keep_ <= 0) return;
  std::vector<std::pair<int64_t, std::string>> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(checkpoint_dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("epoch_", 0) == 0 && name.size() > 9 && name.substr(name.size() - 3) == ".pt") {
      try {
        files.emplace_back(std::stoll(name.substr(6, name.size() - 9)), e.path().string());
      } catch (const std::exception&) {
      }
    }
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + size_t(keep_) < files.size(); ++i) ::unlink(files[i].second.c_str());
}

}  // namespace dt::trainer
