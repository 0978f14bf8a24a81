// trainer/fused_optimizer: the fused Adam and SGD steps against LibTorch's own per-parameter
// Adam and SGD run in fp64 (the simpler reference), and across a checkpoint save and resume.
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include "model/resnet.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "tests/trainer/optim/fused_optimizer_check.h"
#include "trainer/optim/fused_optimizer.h"
#include "trainer/optim/optimizer.h"

using namespace dt;

namespace {

// Top-level ATen ops dispatched by one optimizer step (each is at least one kernel launch on a
// GPU), counted through RecordFunction on this thread.
thread_local int op_depth = 0;
thread_local int top_level_ops = 0;

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction&) {
  if (op_depth++ == 0) ++top_level_ops;
  return nullptr;
}
void on_op_end(const at::RecordFunction&, at::ObserverContext*) { --op_depth; }

int ops_in_step(torch::optim::Optimizer& opt) {
  top_level_ops = 0;
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_op_start, on_op_end).scopes({at::RecordScope::FUNCTION}));
  opt.step();
  at::removeCallback(handle);
  return top_level_ops;
}

}  // namespace

// fp32 against fp64 after 6 steps: an off-by-one step count (bias correction), a dropped weight
// decay or a wrong first momentum step moves parameters by 1e-4 or more.
TEST(FusedOptimizer, AdamMatchesLibTorchAdamInDouble) {
  test_util::FusedCheck c;
  ASSERT_EQ(c.steps, 6);
  test_util::expect_fused_matches(c, 2e-6);
}

TEST(FusedOptimizer, SgdMatchesLibTorchSgdInDouble) {
  for (double momentum : {0.0, 0.9}) {
    for (bool nesterov : {false, true}) {
      if (nesterov && momentum == 0) continue;
      SCOPED_TRACE("momentum " + std::to_string(momentum) + (nesterov ? " nesterov" : ""));
      test_util::FusedCheck c;
      c.kind = "sgd";
      c.lr = 0.1;
      c.weight_decay = 5e-4;
      c.momentum = momentum;
      c.nesterov = nesterov;
      test_util::expect_fused_matches(c, 2e-6);
    }
  }
}

// --cuda-graph's capturable mode: the learning rate comes from a float32 tensor that set_lr
// refills. It drops to a third at step 3; a tensor left at the first value would put the
// parameters about 1e-3 off, 500 times the tolerance.
TEST(FusedOptimizer, DeviceLearningRateFollowsSetLr) {
  for (const std::string kind : {"adam", "sgd"}) {
    SCOPED_TRACE(kind);
    test_util::FusedCheck c;
    c.kind = kind;
    c.nesterov = kind == "sgd";
    c.device_lr = true;
    test_util::expect_fused_matches(c, 2e-6);
  }
}

// A replayed graph runs Adam's step on the device only; replayed() does its host half, so the
// step counts a checkpoint stores are those of as many eager steps.
TEST(FusedOptimizer, ReplayedAdvancesAdamsHostStepCounts) {
  auto params = test_util::resnet20_shaped_params(torch::kFloat32, torch::kCPU);
  trainer::FusedAdam adam(params, torch::optim::AdamOptions(1e-3));
  trainer::device_lr(adam).use_device_lr(torch::kCPU, 1e-3);
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
  params[0].mutable_grad() = torch::Tensor();  // a parameter the step did not update
  adam.step();
  adam.replayed();
  adam.replayed();
  EXPECT_FALSE(adam.state().count(params[0].unsafeGetTensorImpl()));
  for (size_t i = 1; i < params.size(); ++i) {
    const auto& s = static_cast<const torch::optim::AdamParamState&>(
        *adam.state().at(params[i].unsafeGetTensorImpl()));
    EXPECT_EQ(s.step(), 3) << i;
  }
}

// The CPU kernels walk raw storage, so a gradient laid out unlike its parameter must not reach
// them: that step takes LibTorch's loop, and the fused steps after it resume with the right
// step count (Adam's count is refilled from the state the loop advanced).
TEST(FusedOptimizer, GradientInAnotherLayoutFallsBackAndStaysExact) {
  for (const std::string kind : {"adam", "sgd"}) {
    SCOPED_TRACE(kind);
    test_util::FusedCheck c;
    c.kind = kind;
    c.plain_grad_at = 2;
    test_util::expect_fused_matches(c, 2e-6);
  }
}

// A parameter without a gradient is left alone and gets no state, as in LibTorch.
TEST(FusedOptimizer, ParametersWithoutGradientsAreSkipped) {
  for (const std::string kind : {"adam", "sgd"}) {
    SCOPED_TRACE(kind);
    auto ps = test_util::resnet20_shaped_params(torch::kFloat32, torch::kCPU);
    for (auto& p : ps) p.mutable_grad() = torch::randn_like(p);
    ps[2].mutable_grad() = torch::Tensor();
    const auto before = ps[2].clone();
    trainer::Config c;
    c.optimizer = *parse_enum<trainer::OptimizerKind>(kind);
    auto opt = trainer::make_optimizer(c, ps);
    opt->step();
    EXPECT_TRUE(torch::equal(ps[2], before));
    EXPECT_EQ(opt->state().count(ps[2].unsafeGetTensorImpl()), 0u);
    EXPECT_EQ(opt->state().size(), ps.size() - 1);
  }
}

// Training resumed from a checkpoint continues exactly as if it had never stopped: the step
// counts the fused kernel reads are refilled from the restored state.
TEST(FusedOptimizer, ResumeFromCheckpointContinuesBitForBit) {
  for (const std::string kind : {"adam", "sgd"}) {
    SCOPED_TRACE(kind);
    trainer::Config c;
    c.optimizer = *parse_enum<trainer::OptimizerKind>(kind);
    c.lr = kind == "adam" ? 1e-2 : 0.1;
    c.weight_decay = 1e-4;
    auto make_net = [](uint64_t seed) {  // weights channels_last, as the trainer lays them out
      torch::manual_seed(seed);
      auto net = model::make_resnet("resnet14");
      for (auto& p : net->parameters()) {
        if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
      }
      return net;
    };
    auto step_with_grads = [](torch::nn::Module& m, torch::optim::Optimizer& opt, int step) {
      torch::manual_seed(500 + step);
      for (auto& p : m.parameters()) p.mutable_grad() = torch::randn_like(p);
      opt.step();
    };
    auto straight = make_net(1);
    auto opt_straight = trainer::make_optimizer(c, straight->parameters());
    for (int s = 0; s < 5; ++s) step_with_grads(*straight, *opt_straight, s);

    test_util::TempDir dir;
    auto first = make_net(1);
    auto opt_first = trainer::make_optimizer(c, first->parameters());
    for (int s = 0; s < 3; ++s) step_with_grads(*first, *opt_first, s);
    trainer::TrainingState st;
    st.model_name = "resnet14";
    trainer::save_checkpoint(dir / "c.pt", *first, opt_first.get(), *parse_enum<trainer::OptimizerKind>(kind), st);

    auto resumed = make_net(7);  // other initial weights: everything must come from the file
    auto opt_resumed = trainer::make_optimizer(c, resumed->parameters());
    ASSERT_TRUE(trainer::load_checkpoint(dir / "c.pt", *resumed, opt_resumed.get(), *parse_enum<trainer::OptimizerKind>(kind)).full);
    for (int s = 3; s < 5; ++s) step_with_grads(*resumed, *opt_resumed, s);

    auto a = straight->parameters();
    auto b = resumed->parameters();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  }
}

// The point of fusing: a step's op count does not grow with the number of parameters (resnet20:
// 59 tensors). A group that silently fell back to the per-parameter loop would fail here.
TEST(FusedOptimizer, StepIsAFewOpsNotSomePerParameter) {
  for (const std::string kind : {"adam", "sgd"}) {
    trainer::Config c;
    c.optimizer = *parse_enum<trainer::OptimizerKind>(kind);
    auto net = model::make_resnet("resnet20");
    auto params = net->parameters();
    auto fused = trainer::make_optimizer(c, params);
    std::unique_ptr<torch::optim::Optimizer> loop;
    if (kind == "adam") loop = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(c.lr));
    else loop = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(c.lr).momentum(c.momentum));
    for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
    fused->step();  // the first step creates the state
    loop->step();
    const int fused_ops = ops_in_step(*fused);
    const int loop_ops = ops_in_step(*loop);
    std::cout << kind << ", " << params.size() << " parameter tensors: fused step " << fused_ops
              << " ops, LibTorch's loop " << loop_ops << " ops\n";
    EXPECT_LE(fused_ops, 3) << kind;
    EXPECT_GE(loop_ops, int(params.size())) << kind;
  }
}
