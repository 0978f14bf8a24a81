// GPU checks; each skips (GTEST_SKIP with the reason) where no CUDA GPU is visible. Run under
// mpirun -np 1 so that the NCCL path (bootstrapped by MPI) is exercised at world size 1.
#include <gtest/gtest.h>
#include "comm/communicator.h"
#include "comm/reducer.h"
#include "comm/sync_batch_norm.h"
#include "data/augment.h"
#include "data/synthetic.h"
#include "model/batch_norm.h"
#include "model/resnet.h"
#include "tests/comm/mpi_test_env.h"
#include "tests/test_util.h"
#include "trainer/trainer.h"

using namespace dt;

#define DT_REQUIRE_GPU()                                                              \
  do {                                                                                \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU visible: skipped"; \
  } while (0)

namespace {
comm::Communicator& communicator() {
  static comm::Communicator c(test_util::mpi_world(), std::chrono::seconds(60), 0);
  return c;
}
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.cpu().to(torch::kFloat64) - b.cpu().to(torch::kFloat64)).norm() /
          b.cpu().to(torch::kFloat64).norm().clamp_min(1e-300)).item<double>();
}
}  // namespace

TEST(Cuda, AugmentKernelEqualsCpuPath) {
  DT_REQUIRE_GPU();
  auto gen = at::detail::createCPUGenerator(3);
  auto images = torch::randint(0, 256, {64, 3, 32, 32}, gen, torch::kUInt8);
  auto indices = torch::randint(0, 64, {50}, gen, torch::kInt64);
  for (auto mode : {data::AugmentMode::Standard, data::AugmentMode::Seed, data::AugmentMode::None}) {
    for (auto pad : {data::PadMode::Zero, data::PadMode::Reflect}) {
      data::AugmentSpec spec;
      spec.mode = mode;
      spec.pad_mode = pad;
      auto source = data::prepare_source(images, mode);
      auto g = data::geometry_for(spec, source.size(2), true);
      for (bool cl : {false, true}) {
        auto cpu = data::augment_batch(source, indices, g, true, 7, 2, torch::kFloat32, cl);
        auto gpu = data::augment_batch(source.cuda(), indices, g, true, 7, 2, torch::kFloat32, cl);
        EXPECT_TRUE(torch::equal(cpu, gpu.cpu())) << data::to_string(mode) << " channels_last " << cl;
      }
    }
  }
}

TEST(Cuda, SyncBatchNormOnCudaEqualsBatchNorm) {
  DT_REQUIRE_GPU();
  auto& comm = communicator();
  auto x = torch::randn({16, 8, 6, 6}, torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCUDA));
  auto g = torch::randn_like(x);
  torch::nn::BatchNorm2d ref{torch::nn::BatchNorm2dOptions(8)};
  model::BatchNorm mine(8);
  ref->to(torch::kCUDA, torch::kFloat64);
  mine->to(torch::kCUDA, torch::kFloat64);
  mine->set_sync(std::make_shared<comm::SyncBatchNorm>(comm));
  auto xr = x.clone().requires_grad_(true), xm = x.clone().requires_grad_(true);
  auto yr = ref->forward(xr), ym = mine->forward(xm);
  (yr * g).sum().backward();
  (ym * g).sum().backward();
  EXPECT_LE(rel_err(ym, yr), 1e-10);
  EXPECT_LE(rel_err(xm.grad(), xr.grad()), 1e-10);
  EXPECT_LE(rel_err(mine->weight.grad(), ref->weight.grad()), 1e-10);
  EXPECT_LE(rel_err(mine->running_var, ref->running_var), 1e-10);
}

TEST(Cuda, ReducerOnCudaTensorsKeepsGradients) {
  DT_REQUIRE_GPU();
  auto& comm = communicator();
  torch::manual_seed(1);
  auto net = model::make_resnet("resnet14");
  net->to(torch::kCUDA);
  auto x = torch::randn({8, 3, 32, 32}, torch::kCUDA);
  auto y = torch::randint(0, 10, {8}, torch::TensorOptions().dtype(torch::kInt64).device(torch::kCUDA));
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : net->parameters()) expected.push_back(p.grad().clone());
  net->zero_grad();
  comm::ReducerOptions o;
  o.bucket_mb = 0.1;
  comm::Reducer reducer(net->parameters(), comm, o);
  reducer.prepare(true);
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  reducer.finish();
  auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_LE(rel_err(params[i].grad(), expected[i]), 1e-6) << i;
}

TEST(Cuda, ShortTrainingRunLearns) {
  DT_REQUIRE_GPU();
  test_util::TempDir dir;
  auto c = test_util::synthetic_config(dir, 2000, 2, 64);
  trainer::RunContext ctx;
  ctx.device = torch::Device(torch::kCUDA, 0);
  ctx.comm = &communicator();
  trainer::Trainer t(c, ctx, data::make_synthetic(2000, 0), data::make_synthetic(500, 1));
  auto s = t.run();
  EXPECT_GT(s.last_eval.accuracy, 0.5);
}
