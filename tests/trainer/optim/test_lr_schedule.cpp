// trainer/optim/: the LR schedules' shapes, milestones and warm-up, step by step.
#include <gtest/gtest.h>
#include "trainer/optim/lr_schedule.h"

using namespace dt;

TEST(LrSchedule, Shapes) {
  trainer::LrSchedule s;
  s.base_lr = 0.1;
  s.total_epochs = 10;
  EXPECT_DOUBLE_EQ(s.lr_at(5.7), 0.1);
  s.kind = trainer::ScheduleKind::Step;
  s.step_epochs = 3;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(s.lr_at(2.9), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(3.0), 0.05);
  EXPECT_DOUBLE_EQ(s.lr_at(6.5), 0.025);
  s.kind = trainer::ScheduleKind::Cosine;
  s.warmup_epochs = 1;
  EXPECT_NEAR(s.lr_at(0.1), 0.01, 1e-12);
  EXPECT_NEAR(s.lr_at(1.0), 0.1, 1e-12);
  EXPECT_NEAR(s.lr_at(5.5), 0.05, 1e-12);
  EXPECT_NEAR(s.lr_at(10), 0.0, 1e-12);
  s.kind = trainer::ScheduleKind::OneCycle;
  s.warmup_epochs = 3;
  EXPECT_NEAR(s.lr_at(0), 0.1 / 25, 1e-12);
  EXPECT_NEAR(s.lr_at(3), 0.1, 1e-12);
  EXPECT_LT(s.lr_at(9.9), 0.001);
  for (int i = 1; i < 30; ++i) EXPECT_GT(s.lr_at(i / 10.0), s.lr_at((i - 1) / 10.0));
  for (int i = 31; i < 100; ++i) EXPECT_LT(s.lr_at(i / 10.0), s.lr_at((i - 1) / 10.0));
}

// He et al.'s CIFAR schedule: 0.1, /10 at 32k and 48k of 64k iterations (epochs 82 and 123 of
// 164 at 390 steps per epoch), optionally after a warm-up; values as torch's MultiStepLR gives.
TEST(LrSchedule, MilestonesAndWarmUp) {
  trainer::LrSchedule s;
  s.kind = trainer::ScheduleKind::Step;
  s.base_lr = 0.1;
  s.total_epochs = 164;
  s.step_epochs = 1;  // ignored once milestones are given
  s.milestones = {82, 123};
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(81.99), 0.1);
  EXPECT_NEAR(s.lr_at(82), 0.01, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr_at(81 + 49920.0 / 50000), 0.1);  // the last step of epoch 82 (drop_last)
  EXPECT_NEAR(s.lr_at(122.5), 0.01, 1e-15);
  EXPECT_NEAR(s.lr_at(123), 0.001, 1e-15);
  EXPECT_NEAR(s.lr_at(163.9), 0.001, 1e-15);
  s.warmup_epochs = 2;  // linear from 0, then the milestones as before
  EXPECT_NEAR(s.lr_at(0.5), 0.025, 1e-15);
  EXPECT_NEAR(s.lr_at(2), 0.1, 1e-15);
  EXPECT_NEAR(s.lr_at(100), 0.01, 1e-15);
  s.kind = trainer::ScheduleKind::Constant;  // the warm-up applies to a constant LR too
  EXPECT_NEAR(s.lr_at(1), 0.05, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr_at(50), 0.1);
}

// Page's ResNet-9 schedule: linear from 0 to the peak at epoch 5, linear to 0 at epoch 24.
TEST(LrSchedule, LinearWarmUpAndDecay) {
  trainer::LrSchedule s;
  s.kind = trainer::ScheduleKind::Linear;
  s.base_lr = 0.4;
  s.total_epochs = 24;
  s.warmup_epochs = 5;
  EXPECT_NEAR(s.lr_at(0), 0.0, 1e-15);
  EXPECT_NEAR(s.lr_at(2.5), 0.2, 1e-15);
  EXPECT_NEAR(s.lr_at(5), 0.4, 1e-15);
  EXPECT_NEAR(s.lr_at(14.5), 0.2, 1e-15);
  EXPECT_NEAR(s.lr_at(24), 0.0, 1e-15);
}

// Each warm-up step takes the rate at its own end: the first step already moves, the last warm-up
// step runs at the peak, and a step is never given more than the peak.
TEST(LrSchedule, WarmUpStepsReadTheirEnd) {
  trainer::LrSchedule s;
  s.kind = trainer::ScheduleKind::Cosine;
  s.base_lr = 0.1;
  s.total_epochs = 10;
  s.warmup_epochs = 1;
  const int steps_per_epoch = 390;
  const double step = 1.0 / steps_per_epoch;
  EXPECT_NEAR(s.lr_at(0, step), 0.1 / steps_per_epoch, 1e-15);
  EXPECT_NEAR(s.lr_at(0.5, step), 0.1 * (0.5 + step), 1e-15);
  EXPECT_NEAR(s.lr_at(1 - step, step), 0.1, 1e-15);
  EXPECT_NEAR(s.lr_at(1 - step / 2, step), 0.1, 1e-15);  // a step that straddles the end
  double previous = 0;
  for (int i = 0; i < steps_per_epoch; ++i) {
    const double lr = s.lr_at(i * step, step);
    EXPECT_GT(lr, previous) << "step " << i;
    previous = lr;
  }
  EXPECT_NEAR(s.lr_at(1, step), 0.1, 1e-15);  // after the warm-up: the cosine, from its start
  EXPECT_LT(s.lr_at(1 + step, step), 0.1);
}
