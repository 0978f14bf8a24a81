#include "model/network.h"

#include <algorithm>
#include <stdexcept>
#include "model/resnet.h"
#include "model/resnet9.h"

namespace dt::model {

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& spec : resnet_specs()) names.push_back(spec.name);
  names.push_back(kResNet9Name);
  return names;
}

void require_known_model(const std::string& name) {
  const auto names = model_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
}

std::shared_ptr<Network> make_model(const std::string& name, int64_t num_classes) {
  require_known_model(name);
  if (name == kResNet9Name) return ResNet9(num_classes).ptr();
  return make_resnet(name, num_classes).ptr();
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace dt::model
