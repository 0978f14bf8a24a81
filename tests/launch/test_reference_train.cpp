// launch/bench/reference_train.py, the PyTorch-only trainer BENCHMARKS.md compares dist_train's
// accuracy with: it learns on the real data, and bad input gets one line and exit code 2.
#include <gtest/gtest.h>
#include "tests/test_util.h"

using namespace dt;

namespace {
std::string script() { return test_util::source_dir() + "/launch/bench/reference_train.py"; }
}  // namespace

TEST(ReferenceTrain, LearnsOnTheRealDataInAFewSteps) {
  DT_REQUIRE_PYTHON();
  DT_REQUIRE_CIFAR();
  auto r = test_util::run_command(test_util::python() + " " + script() + " --data " +
                                  test_util::cifar_dir() +
                                  " --model resnet20 --epochs 1 --max-steps 40 --threads 1 --eval-images 2000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto last = r.output.substr(r.output.rfind('{'));
  EXPECT_NE(last.find("\"final\": true"), std::string::npos) << last;
  EXPECT_NE(last.find("\"steps\": 40,"), std::string::npos) << last;
  const auto at = last.find("\"test_accuracy\": ");
  ASSERT_NE(at, std::string::npos) << last;
  const double accuracy = std::stod(last.substr(at + 17));
  // Chance is 10%; 40 steps of batch 128 reached 22.8% on the whole test set.
  EXPECT_GT(accuracy, 0.15) << last;
  EXPECT_LE(accuracy, 1.0) << last;
}

TEST(ReferenceTrain, MissingDataGivesOneLineAndExitCode2) {
  DT_REQUIRE_PYTHON();
  test_util::TempDir empty;
  auto r = test_util::run_command(test_util::python() + " " + script() + " --data " + empty.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("data_batch_1.bin"), std::string::npos) << r.output;
}
