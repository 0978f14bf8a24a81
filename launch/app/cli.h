// Command line -> trainer::Config. Every flag is declared once (cli.cpp), with its default taken
// from Config's own initialiser and its help text; values are validated strictly, and any error
// becomes one ConfigError line (exit code 2).
#pragma once
#include <string>
#include "trainer/config/config.h"

namespace dt::launch {

struct CliResult {
  trainer::Config config;
  bool help = false;
  std::string help_text;
  bool data_defaulted = false;  // --data was not given: it came from $CIFAR10_DIR or the default
};

CliResult parse_cli(int argc, const char* const* argv);

// Resolves where the data comes from: --synthetic, else --data (must exist when given), else
// $CIFAR10_DIR, else data/cifar-10-batches-bin; when nothing is found, the synthetic default.
// Returns a line for the log saying what was chosen.
std::string resolve_data_source(CliResult& cli, int64_t synthetic_default);

}  // namespace dt::launch
