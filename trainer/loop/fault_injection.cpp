#include "trainer/loop/fault_injection.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <signal.h>
#include <unistd.h>
#include <sstream>
#include <thread>
#include "trainer/config/errors.h"

namespace dt::trainer {

namespace {

constexpr const char* kForm = "rank=R,step=S,action=sleep:SECONDS|kill|corrupt:NAME|nan";

// The whole of `text` as an integer or a number, or nothing (std::stoll would accept "7junk").
bool whole_int(const std::string& text, int64_t& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

bool whole_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return errno == 0 && *end == '\0' && std::isfinite(out);
}

}  // namespace

void FaultInjection::invalid(const std::string& why) {
  const char* env = std::getenv("DT_FAULT_INJECT");
  throw ConfigError(std::string("DT_FAULT_INJECT='") + (env ? env : "") + "': " + why +
                    " (expected " + kForm + ")");
}

FaultInjection FaultInjection::from_environment() {
  FaultInjection f;
  const char* env = std::getenv("DT_FAULT_INJECT");
  if (!env || !*env) return f;
  std::stringstream in(env);
  std::string item;
  int64_t number = 0;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) invalid("'" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "rank") {
      if (!whole_int(value, number) || number < 0 || number > INT32_MAX) {
        invalid("rank '" + value + "' is not a rank number");
      }
      f.rank = int(number);
    } else if (key == "step") {
      if (!whole_int(value, number) || number < 0) invalid("step '" + value + "' is not a step");
      f.step = number;
    } else if (key == "action") {
      const auto colon = value.find(':');
      const std::string name = value.substr(0, colon);
      if (colon != std::string::npos) f.argument = value.substr(colon + 1);
      const bool has_argument = colon != std::string::npos;
      const auto action = parse_enum<FaultAction>(name);
      if (!action) invalid("unknown action '" + name + "'");
      f.action = *action;
      if (f.action == FaultAction::Sleep) {
        if (!whole_double(f.argument, f.seconds) || f.seconds <= 0) {
          invalid("sleep needs its seconds, a number > 0 (action=sleep:5)");
        }
      } else if (f.action == FaultAction::Corrupt) {
        if (f.argument.empty()) invalid("corrupt needs a parameter name (action=corrupt:fc.bias)");
      } else if (has_argument) {  // kill, nan
        invalid(name + " takes no argument");
      }
    } else {
      invalid("unknown key '" + key + "'");
    }
  }
  if (f.rank < 0 || f.step < 0 || f.action == FaultAction::None) {
    invalid("rank, step and action are all needed");
  }
  return f;
}

void FaultInjection::before_step(int rank_now, int64_t step_now, torch::nn::Module& net) const {
  if (!fires(rank_now, step_now)) return;
  switch (action) {
    case FaultAction::Sleep:
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      break;
    case FaultAction::Kill:
      ::kill(::getpid(), SIGKILL);
      break;
    case FaultAction::Corrupt: {
      torch::NoGradGuard no_grad;
      net.named_parameters()[argument].add_(1.0);
      break;
    }
    case FaultAction::None:
    case FaultAction::Nan:  // applied to the loss (poisons_loss)
      break;
  }
}

}  // namespace dt::trainer
