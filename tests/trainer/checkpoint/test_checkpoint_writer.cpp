// trainer/checkpoint/checkpoint_writer.h: background checkpoint writes hold the state of the moment they
// were asked for, land in order, and never lose an error.
#include <gtest/gtest.h>
#include <atomic>
#include <fstream>
#include "model/resnet.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/checkpoint_writer.h"
#include "trainer/checkpoint/errors.h"

using namespace dt;
using dt::test_util::TempDir;

namespace {

std::string contents(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace

TEST(CheckpointWriter, FilesHoldTheStateOfTheMomentTheyWereAskedFor) {
  TempDir dir;
  torch::manual_seed(3);
  auto net = model::make_resnet("resnet20");
  trainer::TrainingState st;
  st.model_name = "resnet20";
  st.step = 7;
  const auto before = net->parameters()[0].clone();
  trainer::CheckpointWriter writer;
  writer.write(trainer::checkpoint_bytes(*net, nullptr, trainer::OptimizerKind::Adam, st),
               {dir / "last.pt", dir / "best.pt"});
  {  // training goes on while the files are written
    torch::NoGradGuard g;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p));
  }
  writer.wait();
  EXPECT_EQ(contents(dir / "last.pt"), contents(dir / "best.pt"));
  auto probe = model::make_resnet("resnet20");
  auto loaded = trainer::load_checkpoint(dir / "last.pt", *probe, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(loaded.state.step, 7);
  EXPECT_TRUE(torch::equal(probe->parameters()[0], before));
  EXPECT_FALSE(torch::equal(probe->parameters()[0], net->parameters()[0]));
}

TEST(CheckpointWriter, WritesLandInOrderAndAfterRunsOnceTheFilesAreThere) {
  TempDir dir;
  trainer::CheckpointWriter writer;
  std::atomic<int> afters{0}, mismatches{0}, last_after{-1};
  for (int i = 0; i < 20; ++i) {
    // Sizes that differ, and fresh content: a later write that landed first would show.
    std::vector<char> bytes(100000 + 977 * size_t(i), char('a' + i % 26));
    writer.write(std::move(bytes), {dir / "f"}, [&, i] {
      // Each `after` must see its own write on disk, and run after the one before it.
      if (contents(dir / "f") != std::string(100000 + 977 * size_t(i), char('a' + i % 26))) ++mismatches;
      if (last_after.exchange(i) != i - 1) ++mismatches;
      ++afters;
    });
  }
  writer.wait();
  EXPECT_EQ(afters.load(), 20);
  EXPECT_EQ(mismatches.load(), 0);
  const auto last = contents(dir / "f");
  EXPECT_EQ(last, std::string(100000 + 977 * 19, char('a' + 19 % 26)));
}

TEST(CheckpointWriter, AFailedWriteIsRethrownOnTheTrainingThreadAndTheNextOneWorks) {
  TempDir dir;
  std::ofstream(dir / "not_a_folder") << "x";
  trainer::CheckpointWriter writer;
  writer.write(std::vector<char>(100, 'x'), {dir / "not_a_folder/last.pt"});
  try {
    writer.wait();
    FAIL() << "a write under a regular file must fail";
  } catch (const trainer::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("not_a_folder"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(writer.wait()) << "an error is reported once";
  // Also when the error surfaces from the next write() instead of wait().
  writer.write(std::vector<char>(100, 'x'), {dir / "not_a_folder/last.pt"});
  EXPECT_THROW(writer.write(std::vector<char>(10, 'y'), {dir / "ok.pt"}),
               trainer::CheckpointError);
  writer.write(std::vector<char>(10, 'y'), {dir / "ok.pt"});
  writer.wait();
  EXPECT_EQ(contents(dir / "ok.pt"), std::string(10, 'y'));
}
