// model/: shapes, parameter counts and state-dict names, checked against PyTorch itself.
#include <gtest/gtest.h>
#include <cmath>
#include <sstream>
#include "model/network.h"
#include "model/resnet.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/checkpoint.h"

using namespace dt;

TEST(ResNet, OutputShapeForEveryModel) {
  for (const auto& name : model::model_names()) {
    if (name == "resnet110") continue;  // same code path as resnet56, just slower
    auto net = model::make_model(name);
    auto out = net->forward(torch::randn({3, 3, 32, 32}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 10})) << name;
  }
}

TEST(ResNet, ParameterCounts) {
  // resnet14: the seed's model (counted from the seed's Python); resnet20..110: He et al.'s
  // option-A ResNets (0.27M, 0.46M, 0.66M, 0.85M, 1.7M as in the paper).
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"resnet14", 195738}, {"resnet20", 269722}, {"resnet32", 464154},
      {"resnet44", 658586}, {"resnet56", 853018}, {"resnet110", 1727962},
      {"resnet9", 6573120}};  // Page's ResNet-9: the 6.5M of his write-up
  for (const auto& [name, count] : expected) {
    EXPECT_EQ(model::parameter_count(*model::make_model(name)), count) << name;
  }
}

TEST(ResNet, UnknownModelIsRejected) {
  EXPECT_THROW(model::make_resnet("resnet15"), std::invalid_argument);
  EXPECT_THROW(model::make_model("resnet15"), std::invalid_argument);
  EXPECT_THROW(model::make_resnet("resnet9"), std::invalid_argument) << "not a He et al. ResNet";
}

TEST(ResNet, StateDictNamesAndShapesEqualPyTorch) {
  DT_REQUIRE_PYTHON();
  for (const char* name : {"resnet14", "resnet20", "resnet56", "resnet9"}) {
    auto r = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                  "/tests/python/reference_models.py names " + name);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::ostringstream cpp;
    cpp << "[";
    bool first = true;
    for (const auto& kv : trainer::state_dict(*model::make_model(name))) {
      cpp << (first ? "" : ", ") << "[\"" << kv.key() << "\", [";
      for (int64_t d = 0; d < kv.value().dim(); ++d) cpp << (d ? ", " : "") << kv.value().size(d);
      cpp << "]]";
      first = false;
    }
    cpp << "]";
    std::string py = r.output;
    py.erase(py.find_last_not_of("\n") + 1);
    EXPECT_EQ(cpp.str(), py) << name << ": C++ state dict differs from PyTorch's (same order)";
  }
}

TEST(ResNet, SameSeedSameWeights) {
  torch::manual_seed(3);
  auto a = model::make_resnet("resnet14");
  torch::manual_seed(3);
  auto b = model::make_resnet("resnet14");
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
}

// He et al.'s ResNets start from their initialisation (normal, std sqrt(2 / (9 cout)), "fan out"),
// as launch/bench/reference_train.py does; the seed's resnet14 and ResNet-9 keep PyTorch's default
// (uniform within 1/sqrt(fan in)), as their Python originals did. Accuracy comparisons with those
// scripts rest on it.
TEST(ResNet, ConvolutionsStartFromTheirModelsInitialisation) {
  torch::manual_seed(4);
  for (const char* name : {"resnet20", "resnet56", "resnet14", "resnet9"}) {
    const bool he = std::string(name) != "resnet14" && std::string(name) != "resnet9";
    int64_t convs = 0;
    for (const auto& kv : model::make_model(name)->named_parameters()) {
      const auto& w = kv.value();
      if (w.dim() != 4) continue;
      ++convs;
      const double cout = double(w.size(0)), fan_in = double(w.numel() / w.size(0));
      const double std = w.std().item<double>(), mean = w.mean().item<double>();
      // Over >= 432 weights the sample std is within 15% of the true one by > 4 standard errors.
      if (he) {
        const double expected = std::sqrt(2.0 / (double(w.size(2) * w.size(3)) * cout));
        EXPECT_NEAR(std, expected, 0.15 * expected) << name << " " << kv.key();
        EXPECT_NEAR(mean, 0.0, 0.25 * expected) << name << " " << kv.key();
      } else {
        const double bound = 1.0 / std::sqrt(fan_in);
        EXPECT_LE(w.abs().max().item<double>(), bound * (1 + 1e-6)) << name << " " << kv.key();
        EXPECT_NEAR(std, bound / std::sqrt(3.0), 0.15 * bound / std::sqrt(3.0)) << name << " " << kv.key();
      }
    }
    EXPECT_GE(convs, 7) << name;
  }
}
