#include "launch/app/cli.h"

#include <cxxopts.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>
#include "data/cifar10.h"
#include "model/network.h"
#include "trainer/config/config_fields.h"
#include "trainer/config/errors.h"

namespace dt::launch {
namespace {

using trainer::Config;
using trainer::ConfigError;
using Reader = std::function<void(const cxxopts::ParseResult&, Config&)>;

// Strict conversion: the whole text must be a value of T ("3x", "1e" and "-1" for unsigned fail).
template <typename T>
T convert(const std::string& flag, const std::string& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_enum_v<T>) {
    if (auto choice = parse_enum<T>(value)) return *choice;
    throw ConfigError("--" + flag + " must be " + enum_choices<T>(true) + ", got '" + value + "'");
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    std::vector<double> out;  // comma-separated numbers; "" is the empty list
    std::istringstream items(value);
    for (std::string item; std::getline(items, item, ',');) out.push_back(convert<double>(flag, item));
    if (!value.empty() && value.back() == ',') convert<double>(flag, "");  // "82," is a typo
    return out;
  } else {
    T out{};
    std::istringstream in(value);
    const bool negative_unsigned = std::is_unsigned_v<T> && value.find('-') != std::string::npos;
    if (value.empty() || negative_unsigned || !(in >> out) || !in.eof()) {
      throw ConfigError("--" + flag + ": '" + value + "' is not " +
                        (std::is_integral_v<T> ? "an integer" : "a number"));
    }
    return out;
  }
}

// Turns the rows of trainer/config/config_fields.h into cxxopts flags and reads them back into a Config;
// each default is Config{}'s own.
class FlagTable {
 public:
  explicit FlagTable(cxxopts::Options& options) : options_(options) {}

  template <typename T>
  void value(const std::string& group, const std::string& name, const std::string& /*key*/,
             T Config::*field, const std::string& help) {
    // Parsed as text here and converted by convert<T>, so a bad value names its flag.
    options_.add_options(group)(
        name, help, cxxopts::value<std::string>()->default_value(trainer::value_text(defaults_.*field)));
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      // Given twice, the last one wins (so a wrapper's defaults can be overridden after them);
      // the resolved configuration that rank 0 prints shows which.
      c.*field = convert<T>(name, r[name].as<std::string>());
    });
  }

  void enable(const std::string& group, const std::string& name, const std::string& /*key*/,
              bool Config::*field, const std::string& help) {
    options_.add_options(group)(name, help + " (default: off)");
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      if (given(r, name)) c.*field = true;
    });
  }

  void disable(const std::string& group, const std::string& name, const std::string& /*key*/,
               bool Config::*field, const std::string& help) {
    options_.add_options(group)(name, help);
    readers_.push_back([name, field](const cxxopts::ParseResult& r, Config& c) {
      if (given(r, name)) c.*field = false;
    });
  }

  // One of several switches that set the same field (--sync-bn, --no-sync-bn): two of them
  // given together contradict each other.
  template <typename T>
  void setting(const std::string& group, const std::string& name, const std::string& key,
               T Config::*field, T value, const std::string& help) {
    options_.add_options(group)(name, help);
    readers_.push_back([this, name, key, field, value](const cxxopts::ParseResult& r, Config& c) {
      if (!given(r, name)) return;
      auto& setter = setters_[key];
      if (!setter.empty() && setter != name) {
        throw ConfigError("--" + setter + " and --" + name + " exclude each other");
      }
      setter = name;
      c.*field = value;
    });
  }

  // Whether a switch was given. cxxopts also accepts "--switch=false", which its count alone
  // would read as the switch turned on: refused, as any value but the implicit one.
  static bool given(const cxxopts::ParseResult& r, const std::string& name) {
    if (!r.count(name)) return false;
    if (!r[name].as<bool>()) {
      throw ConfigError("--" + name + " takes no value (leave it out for the default)");
    }
    return true;
  }

  void read(const cxxopts::ParseResult& r, Config& c) const {
    for (const auto& f : readers_) f(r, c);
  }

 private:
  cxxopts::Options& options_;
  Config defaults_;
  std::vector<Reader> readers_;
  std::map<std::string, std::string> setters_;  // key -> the setting flag that set it
};

std::string model_names() {
  std::string s;
  for (const auto& name : model::model_names()) s += (s.empty() ? "" : "|") + name;
  return s;
}

}  // namespace

CliResult parse_cli(int argc, const char* const* argv) {
  cxxopts::Options options("dist_train",
                           "Data-parallel ResNet training on CIFAR-10 (LibTorch, NCCL, MPI).\n"
                           "Launch one process per GPU with mpirun/srun, or run alone.");
  FlagTable f(options);
  trainer::declare_config_fields(f, model_names());
  options.add_options("Help")("h,help", "print this help and exit");

  CliResult out;
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
    if (!r.unmatched().empty()) {
      throw ConfigError("unexpected argument '" + r.unmatched().front() + "' (see --help)");
    }
    f.read(r, out.config);
  } catch (const cxxopts::exceptions::exception& e) {
    throw ConfigError(std::string(e.what()) + " (see --help)");
  }
  if (FlagTable::given(r, "help")) {
    out.help = true;
    out.help_text = options.help();
    return out;
  }
  out.data_defaulted = r.count("data") == 0;
  try {
    model::require_known_model(out.config.model);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("--model: ") + e.what());
  }
  // A training run prints, compares and stores the normalisation it uses, not "auto", so a
  // change of it on resume is listed; --eval-only takes it from the checkpoint (trainer.cpp).
  if (!out.config.eval_only) out.config.normalize = data::resolve(out.config.normalize, out.config.augment);
  trainer::validate(out.config);
  // A flag given explicitly that this run would ignore is a mistake about the run (a typo in
  // another flag, a misremembered default), not a harmless no-op.
  const auto& c = out.config;
  const bool step = c.lr_schedule == trainer::ScheduleKind::Step;
  const bool standard = c.augment == data::AugmentMode::Standard;
  const std::vector<std::tuple<std::string, bool, std::string>> applies = {
      {"momentum", c.optimizer == trainer::OptimizerKind::Sgd, "--optimizer sgd"},
      {"lr-gamma", step, "--lr-schedule step"},
      {"lr-step-epochs", step && c.lr_milestones.empty(), "--lr-schedule step without --lr-milestones"},
      {"crop-padding", standard, "--augment standard"},
      {"pad-mode", standard && c.crop_padding > 0, "--augment standard and --crop-padding > 0"},
      {"keep", c.checkpoint_every > 0, "--checkpoint-every N"},
      {"eval-tta", c.eval_only || c.eval_every > 0, "--eval-every > 0 or --eval-only"},
  };
  if (c.global_batch_size > 0 && r.count("batch-size") > 0) {
    throw ConfigError("--batch-size and --global-batch-size exclude each other: give the batch per "
                      "rank or the global batch (which each rank divides by the world size), not both");
  }
  for (const auto& [flag, used, where] : applies) {
    if (!used && r.count(flag) > 0) {
      throw ConfigError("--" + flag + " applies with " + where + " only: this run would ignore it");
    }
  }
  return out;
}

std::string resolve_data_source(CliResult& cli, int64_t synthetic_default) {
  auto& c = cli.config;
  // --eval-only reads the test split alone (launch/app/main.cpp).
  const std::string use = c.eval_only ? "evaluating on " : "training on ";
  if (c.synthetic > 0) {
    if (!cli.data_defaulted) {  // one of them would be ignored
      throw ConfigError("--data and --synthetic exclude each other (got --data " + c.data_dir + ")");
    }
    c.data_dir.clear();
    return use + std::to_string(c.synthetic) + " synthetic images (--synthetic)";
  }
  if (!cli.data_defaulted) {
    std::error_code ec;
    if (!std::filesystem::is_directory(c.data_dir, ec)) {
      throw ConfigError("--data " + c.data_dir + ": no such directory");
    }
    return use + "CIFAR-10 from " + c.data_dir;
  }
  if (const char* env = std::getenv("CIFAR10_DIR"); env && *env) {
    // An explicit environment setting that points nowhere is a mistake, not a request for
    // synthetic data.
    if (!data::cifar10_present(env, c.eval_only)) {
      throw ConfigError(std::string("CIFAR10_DIR=") + env +
                        (c.eval_only ? " does not hold test_batch.bin"
                                     : " does not hold data_batch_1..5.bin and test_batch.bin"));
    }
    c.data_dir = env;
    return use + "CIFAR-10 from " + c.data_dir + " ($CIFAR10_DIR)";
  }
  if (data::cifar10_present("data/cifar-10-batches-bin", c.eval_only)) {
    c.data_dir = "data/cifar-10-batches-bin";
    return use + "CIFAR-10 from " + c.data_dir;
  }
  if (c.eval_only) {  // scoring a checkpoint on stand-in images would be a silent wrong result
    throw ConfigError("--eval-only: no CIFAR-10 test set found ($CIFAR10_DIR unset, no "
                      "data/cifar-10-batches-bin); give --data DIR (or --synthetic N)");
  }
  c.synthetic = synthetic_default;
  c.data_dir.clear();
  return "no CIFAR-10 found ($CIFAR10_DIR unset or incomplete, no data/cifar-10-batches-bin): "
         "training on " + std::to_string(synthetic_default) +
         " synthetic images instead; get the real data with launch/scripts/get_cifar10.sh";
}

}  // namespace dt::launch
