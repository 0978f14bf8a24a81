// trainer/loop/: a short training run that learns, the same seed giving the same weights, epoch
// checkpoints pruned as the loop writes them, and evaluation with test-time flips.
#include <gtest/gtest.h>
#include <algorithm>
#include <fstream>
#include "data/synthetic.h"
#include "model/network.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/loop/evaluate.h"
#include "trainer/loop/trainer.h"

using namespace dt;
using dt::test_util::TempDir;

// --checkpoint-every N --keep K: epoch_N.pt every N epochs, the newest K kept (pruned by the
// background writer once each new file is down), each one loadable at its own epoch.
TEST(Trainer, EpochCheckpointsArePrunedToTheNewestKept) {
  TempDir dir;
  auto c = test_util::synthetic_config(dir, 200, 5, 40);  // 5 steps an epoch
  c.checkpoint_every = 1;
  c.keep = 2;
  c.eval_every = 0;
  trainer::RunContext ctx;
  trainer::Trainer t(c, ctx, data::make_synthetic(200, 0), data::make_synthetic(100, 1));
  t.run();
  std::vector<std::string> kept;
  for (const auto& e : std::filesystem::directory_iterator(dir / "ckpt")) {
    const auto name = e.path().filename().string();
    if (name.rfind("epoch_", 0) == 0) kept.push_back(name);
  }
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"epoch_4.pt", "epoch_5.pt"}));
  for (int epoch : {4, 5}) {
    auto probe = model::make_model(c.model);
    auto loaded = trainer::load_checkpoint(dir / ("ckpt/epoch_" + std::to_string(epoch) + ".pt"),
                                           *probe, nullptr, c.optimizer);
    EXPECT_EQ(loaded.state.epoch, epoch);
  }
}

// --eval-tta flip, against the same sums computed the simple way: the whole range in one fp64
// batch, each image's logits averaged with its mirror's by hand. A linear model on raw pixels
// is not mirror-symmetric, so a missing or wrong flip changes the loss.
TEST(Evaluate, FlipAveragesTheLogitsOfEachImageAndItsMirror) {
  torch::manual_seed(3);
  data::EvalSet set(data::make_synthetic(50, 5), torch::kCPU, torch::kFloat32, /*channels_last=*/true,
                    /*normalize=*/true);
  torch::nn::Linear linear(3 * 32 * 32, 10);
  auto forward = [&](const torch::Tensor& x) { return linear(x.flatten(1)); };
  const int64_t begin = 3, end = 50;
  auto all = set.slice(begin, end);
  auto x = all.images.to(torch::kFloat64);
  auto w = linear->weight.detach().to(torch::kFloat64), b = linear->bias.detach().to(torch::kFloat64);
  auto plain = torch::addmm(b, x.flatten(1), w.t());
  auto mirrored = torch::addmm(b, x.flip({3}).flatten(1), w.t());
  for (const bool flip : {false, true}) {
    auto logits = flip ? (plain + mirrored) / 2 : plain;
    const double loss = torch::nn::functional::cross_entropy(
        logits, all.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                            .item<double>();
    const int64_t correct = logits.argmax(1).eq(all.labels).sum().item<int64_t>();
    linear->train();
    auto sums = trainer::evaluate_sums(*linear, forward, set, begin, end, /*batch=*/7, flip);
    EXPECT_TRUE(linear->is_training()) << "the previous mode is restored";
    EXPECT_EQ(sums.samples, end - begin);
    EXPECT_NEAR(sums.loss_sum, loss, 1e-4 * std::abs(loss)) << "flip " << flip;
    EXPECT_EQ(sums.correct, correct) << "flip " << flip;
  }
  // The two views disagree on this model, so the check above can tell them apart.
  EXPECT_GT((plain - mirrored).abs().max().item<double>(), 1e-2);
}

TEST(Trainer, LearnsSyntheticData) {
  TempDir dir;
  auto c = test_util::synthetic_config(dir, 1200, 2, 32);
  c.log_every = 10;
  trainer::RunContext ctx;
  trainer::Trainer t(c, ctx, data::make_synthetic(1200, 0), data::make_synthetic(500, 1));
  auto s = t.run();
  EXPECT_EQ(s.steps, 2 * (1200 / 32));
  EXPECT_GT(s.last_eval.accuracy, 0.5) << "chance is 0.1";
  EXPECT_TRUE(std::filesystem::exists(dir / "ckpt/last.pt"));
  std::ifstream m(dir / "runs/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    ++lines;
    for (const char* key : {"\"epoch\"", "\"step\"", "\"train_loss\"", "\"test_loss\"",
                            "\"test_accuracy\"", "\"images_per_s\"", "\"seconds\""}) {
      EXPECT_NE(line.find(key), std::string::npos) << key << " in " << line;
    }
  }
  EXPECT_EQ(lines, 2);
}

TEST(Trainer, SameSeedSameParameters) {
  TempDir dir;
  auto c = test_util::synthetic_config(dir, 300, 1, 16);
  c.max_steps = 5;
  std::vector<torch::Tensor> first;
  for (int run = 0; run < 2; ++run) {
    trainer::Trainer t(c, {}, data::make_synthetic(300, 0), data::make_synthetic(100, 1));
    t.run();
    auto params = t.model().parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (run == 0) first.push_back(params[i].clone());
      else EXPECT_TRUE(torch::equal(first[i], params[i])) << i;
    }
  }
}
