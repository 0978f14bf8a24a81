// trainer/report/: TensorBoard files read back by the tensorboard package, and --eval-only's
// JSON line read back by Python.
#include <gtest/gtest.h>
#include <string>
#include "tests/test_util.h"
#include "trainer/report/metrics.h"
#include "trainer/report/tensorboard.h"

using namespace dt;
using dt::test_util::TempDir;

TEST(TensorBoard, Crc32cKnownValue) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(trainer::crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(trainer::crc32c("123456789", 9), 0xe3069283u);
}

TEST(TensorBoard, EventsReadBackWithTheTensorboardPackage) {
  DT_REQUIRE_PYTHON();
  TempDir dir;
  std::string path;
  {
    trainer::TensorBoardWriter w(dir.path().string());
    for (int i = 1; i <= 3; ++i) w.add_scalar("train_loss", 1.0f / i, 100 * i);
    w.add_scalar("test_accuracy", 0.625f, 1);
    path = w.path();
  }
  std::ofstream(dir / "read.py")
      << "import sys\n"
         "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n"
         "ea = EventAccumulator(sys.argv[1]); ea.Reload()\n"
         "for tag in sorted(ea.Tags()['scalars']):\n"
         "    for e in ea.Scalars(tag): print(tag, e.step, round(e.value, 6))\n";
  auto r = test_util::run_command(test_util::python() + " " + (dir / "read.py") + " " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("test_accuracy 1 0.625"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train_loss 100 1.0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train_loss 300 0.333333"), std::string::npos) << r.output;
}


// --eval-only's line: strings escaped (a path may hold anything), an unknown epoch count null.
TEST(Metrics, CheckpointEvalJsonEscapesStringsAndMarksUnknownEpochs) {
  trainer::CheckpointEval e;
  e.checkpoint = "a\"b\\c\nd";
  e.model = "resnet9";
  e.eval_tta = "flip";
  e.precision = "bf16";
  e.epochs_trained = -1;
  e.images = 10000;
  e.test_accuracy = 0.9;
  const auto json = trainer::to_json(e);
  EXPECT_NE(json.find("\"checkpoint\": \"a\\\"b\\\\c\\nd\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"epochs_trained\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"test_accuracy\": 0.9"), std::string::npos) << json;
  EXPECT_EQ(json.find('\n'), std::string::npos) << "one line";
  if (!test_util::python().empty()) {  // and Python's json module reads it back
    auto r = test_util::run_command(test_util::python() + " -c 'import json, sys; d = json.loads(sys.argv[1]); "
                                    "print(d[\"checkpoint\"] == \"a\\\"b\\\\c\\nd\" and d[\"epochs_trained\"] is None)' '" +
                                    json + "'");
    EXPECT_EQ(r.output, "True\n") << json;
  }
}
