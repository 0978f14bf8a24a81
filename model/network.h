// What the trainer needs of a model, and the names --model accepts.
//
// Every model is a torch::nn::Module from images [B, 3, 32, 32] to logits [B, classes], whose
// parameter and buffer names are those of its Python twin in tests/python/reference_models.py,
// so a state dict moves between C++ and Python unchanged.
#pragma once
#include <torch/torch.h>
#include <memory>
#include <string>
#include <vector>

namespace dt::model {

class Network : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
};

// Every model name, in the order --help lists them (the seed's resnet14 first).
std::vector<std::string> model_names();
// Throws std::invalid_argument naming the known models when `name` is not one of them.
void require_known_model(const std::string& name);
std::shared_ptr<Network> make_model(const std::string& name, int64_t num_classes = 10);

int64_t parameter_count(const torch::nn::Module& module);

}  // namespace dt::model
