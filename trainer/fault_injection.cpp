#include "trainer/fault_injection.h"

#include <cstdlib>
#include <sstream>
#include "trainer/errors.h"

namespace dt::trainer {

FaultInjection FaultInjection::from_environment() {
  FaultInjection f;
  const char* env = std::getenv("DT_FAULT_INJECT");
  if (!env || !*env) return f;
  std::stringstream in(env);
  std::string item;
  try {
    while (std::getline(in, item, ',')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw ConfigError("");
      const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
      if (key == "rank") {
        f.rank = std::stoi(value);
      } else if (key == "step") {
        f.step = std::stoll(value);
      } else if (key == "action") {
        const auto colon = value.find(':');
        f.action = value.substr(0, colon);
        if (colon != std::string::npos) f.argument = value.substr(colon + 1);
      } else {
        throw ConfigError("");
      }
    }
  } catch (const std::exception&) {
    throw ConfigError(std::string("DT_FAULT_INJECT='") + env +
                      "' is malformed (expected rank=R,step=S,action=sleep:SEC|kill|corrupt:NAME|nan)");
  }
  if (f.rank < 0 || f.step < 0 ||
      (f.action != "sleep" && f.action != "kill" && f.action != "corrupt" && f.action != "nan")) {
    throw ConfigError(std::string("DT_FAULT_INJECT='") + env +
                      "' needs rank, step and action=sleep:SEC|kill|corrupt:NAME|nan");
  }
  return f;
}

}  // namespace dt::trainer
