// comm/sync_batch_norm under mpirun -np 1..4: equal to torch::nn::BatchNorm2d applied in one
// process to the concatenated batch, with uneven per-rank batches (one sample, none). On CPU
// tensors over MPI, and (SyncBatchNormCuda) on CUDA tensors over NCCL.
#include <gtest/gtest.h>
#include "comm/communicator.h"
#include "comm/sync_batch_norm.h"
#include "data/synthetic.h"
#include "model/batch_norm.h"
#include "model/resnet.h"
#include "tests/comm/mpi_test_env.h"
#include "tests/test_util.h"
#include "trainer/loop/trainer.h"

using namespace dt;

namespace {

comm::Communicator& communicator() { return test_util::cpu_communicator(); }

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  if (b.numel() == 0) return a.numel() == 0 ? 0.0 : 1.0;
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).norm() / b64.norm().clamp_min(1e-300)).item<double>();
}

// Per-rank batch sizes: uneven, with a rank of one sample and (from 3 ranks) an empty one.
std::vector<int64_t> split_for(int world) {
  switch (world) {
    case 1: return {7};
    case 2: return {1, 6};
    case 3: return {4, 1, 0};
    default: {
      std::vector<int64_t> s = {3, 1, 0, 5};
      for (int r = 4; r < world; ++r) s.push_back(2);
      return s;
    }
  }
}

// `dtype`: activations; `param_dtype`: BatchNorm's parameters and statistics (fp32 under bf16
// autocast). Outputs and gradients are held to `tolerance`, running statistics to `stats_tol`.
void check_against_whole_batch(torch::ScalarType dtype, double tolerance,
                               torch::ScalarType param_dtype, double stats_tol,
                               bool constant_channel = false, double offset = 0.5,
                               double grad_along_xhat = 0.0, bool channels_last = false,
                               torch::Device device = torch::kCPU) {
  auto& comm = device.is_cuda() ? *test_util::cuda_communicator() : communicator();
  const int world = comm.world_size(), rank = comm.rank();
  const auto sizes = split_for(world);
  int64_t n = 0, begin = 0;
  for (int r = 0; r < world; ++r) {
    if (r == rank) begin = n;
    n += sizes[r];
  }
  const int64_t channels = 5;
  auto gen = at::detail::createCPUGenerator(2024 + world);
  auto x = (torch::randn({n, channels, 3, 4}, gen) * 2 + offset).to(dtype);
  if (constant_channel) x.select(1, 2).fill_(1.75);  // variance exactly 0 on every rank
  // Upstream gradient; in training it partly follows the normalised input (xhat ~ (x-offset)/2).
  auto g = (torch::randn({n, channels, 3, 4}, gen) + grad_along_xhat * (x.to(torch::kFloat64) - offset) / 2)
               .to(dtype);
  if (channels_last) {  // the layout training uses (--channels-last auto)
    x = x.contiguous(at::MemoryFormat::ChannelsLast);
    g = g.contiguous(at::MemoryFormat::ChannelsLast);
  }
  auto w = torch::rand({channels}, gen).to(param_dtype) + 0.5;
  auto b = torch::randn({channels}, gen).to(param_dtype);
  auto rm = torch::randn({channels}, gen).to(param_dtype);
  auto rv = torch::rand({channels}, gen).to(param_dtype) + 0.5;
  x = x.to(device);
  g = g.to(device);

  // Reference: torch::nn::BatchNorm2d, one process, the whole batch, two training steps.
  torch::nn::BatchNorm2d ref{torch::nn::BatchNorm2dOptions(channels)};
  ref->to(device, param_dtype);
  model::BatchNorm mine(channels);
  mine->to(device, param_dtype);
  {
    torch::NoGradGuard ng;
    for (auto* bn : {static_cast<torch::nn::BatchNorm2dImpl*>(ref.get()),
                     static_cast<torch::nn::BatchNorm2dImpl*>(mine.get())}) {
      bn->weight.copy_(w);
      bn->bias.copy_(b);
      bn->running_mean.copy_(rm);
      bn->running_var.copy_(rv);
    }
  }
  mine->set_sync(std::make_shared<comm::SyncBatchNorm>(comm));
  for (int step = 0; step < 2; ++step) {
    auto xr = x.clone().requires_grad_(true);
    auto yr = ref->forward(xr);
    (yr * g).sum().backward();

    auto xm = x.narrow(0, begin, sizes[rank]).clone().requires_grad_(true);
    auto ym = mine->forward(xm);
    (ym * g.narrow(0, begin, sizes[rank])).sum().backward();

    EXPECT_LE(rel_err(ym, yr.narrow(0, begin, sizes[rank])), tolerance) << "output, rank " << rank;
    EXPECT_LE(rel_err(xm.grad(), xr.grad().narrow(0, begin, sizes[rank])), tolerance)
        << "grad_input, rank " << rank;
    // Each rank holds its share of the parameter gradients; their sum is the whole batch's.
    auto gw = mine->weight.grad().clone(), gb = mine->bias.grad().clone();
    comm.all_reduce(gw);
    comm.all_reduce(gb);
    EXPECT_LE(rel_err(gw, ref->weight.grad()), tolerance) << "grad_weight";
    EXPECT_LE(rel_err(gb, ref->bias.grad()), tolerance) << "grad_bias";
    EXPECT_EQ(ym.scalar_type(), dtype);
    if (channels_last && sizes[rank] > 0) {
      EXPECT_TRUE(ym.is_contiguous(at::MemoryFormat::ChannelsLast)) << "rank " << rank;
    }
    EXPECT_EQ(mine->running_mean.scalar_type(), param_dtype);
    EXPECT_LE(rel_err(mine->running_mean, ref->running_mean), stats_tol) << "running_mean";
    EXPECT_LE(rel_err(mine->running_var, ref->running_var), stats_tol) << "running_var";
    EXPECT_EQ(mine->num_batches_tracked.item<int64_t>(), ref->num_batches_tracked.item<int64_t>());
    ref->zero_grad();
    mine->zero_grad();
  }
}

}  // namespace

TEST(SyncBatchNorm, EqualsBatchNormOnTheWholeBatchFp64) {
  check_against_whole_batch(torch::kFloat64, 1e-10, torch::kFloat64, 1e-10);
}
TEST(SyncBatchNorm, ConstantChannelHasZeroVarianceNotInf) {
  check_against_whole_batch(torch::kFloat64, 1e-10, torch::kFloat64, 1e-10, /*constant=*/true);
}
TEST(SyncBatchNorm, EqualsBatchNormOnTheWholeBatchFp32) {
  check_against_whole_batch(torch::kFloat32, 1e-5, torch::kFloat32, 1e-5);
}
// --precision bf16: bf16 activations from autocast's convolutions, fp32 parameters and statistics
// (PyTorch's BatchNorm2d takes this mix too). The statistics of the same bf16 values are fp32
// sums either way; outputs and gradients are rounded to bf16 (8-bit significand).
TEST(SyncBatchNorm, EqualsBatchNormOnTheWholeBatchBf16Activations) {
  check_against_whole_batch(torch::kBFloat16, 1e-2, torch::kFloat32, 1e-5);
}
TEST(SyncBatchNorm, EqualsBatchNormOnTheWholeBatchChannelsLastFp32AndBf16) {
  check_against_whole_batch(torch::kFloat32, 1e-5, torch::kFloat32, 1e-5, false, 0.5, 0.5,
                            /*channels_last=*/true);
  check_against_whole_batch(torch::kBFloat16, 1e-2, torch::kFloat32, 1e-5, false, 0.5, 0.5,
                            /*channels_last=*/true);
}
// Inputs whose mean is 8 standard deviations (ReLU outputs, shifted activations): a formula that
// rounds its large, nearly cancelling terms to bf16 before adding them misses by several percent.
TEST(SyncBatchNorm, Bf16GradientStaysAccurateWhenTheMeanDwarfsTheSpread) {
  check_against_whole_batch(torch::kBFloat16, 1e-2, torch::kFloat32, 1e-5, false, /*offset=*/16.0,
                            /*grad_along_xhat=*/1.0);
}

// The same on CUDA tensors: the statistics' all-gather and the backward all-reduce over NCCL.
TEST(SyncBatchNormCuda, EqualsBatchNormOnTheWholeBatchFp64) {
  DT_REQUIRE_CUDA_WORLD();
  check_against_whole_batch(torch::kFloat64, 1e-10, torch::kFloat64, 1e-10, false, 0.5, 0.0,
                            false, test_util::cuda_device());
}
TEST(SyncBatchNormCuda, ConstantChannelHasZeroVarianceNotInf) {
  DT_REQUIRE_CUDA_WORLD();
  check_against_whole_batch(torch::kFloat64, 1e-10, torch::kFloat64, 1e-10, true, 0.5, 0.0,
                            false, test_util::cuda_device());
}
TEST(SyncBatchNormCuda, EqualsBatchNormOnTheWholeBatchFp32AndBf16ChannelsLast) {
  DT_REQUIRE_CUDA_WORLD();
  check_against_whole_batch(torch::kFloat32, 1e-5, torch::kFloat32, 1e-5, false, 0.5, 0.5,
                            /*channels_last=*/true, test_util::cuda_device());
  check_against_whole_batch(torch::kBFloat16, 1e-2, torch::kFloat32, 1e-5, false, 16.0, 1.0,
                            /*channels_last=*/true, test_util::cuda_device());
}

TEST(SyncBatchNorm, TwoCollectivesPerTrainingStepNoneInEval) {
  auto& comm = communicator();
  model::BatchNorm bn(3);
  bn->set_sync(std::make_shared<comm::SyncBatchNorm>(comm));
  auto x = torch::randn({4, 3, 2, 2}, torch::requires_grad());
  const auto before = comm.collectives_issued();
  bn->forward(x).sum().backward();
  EXPECT_EQ(comm.collectives_issued() - before, 2);
  bn->eval();
  const auto mid = comm.collectives_issued();
  auto y = bn->forward(x);
  EXPECT_EQ(comm.collectives_issued(), mid) << "eval mode must not communicate";
  auto plain = torch::batch_norm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var,
                                 false, 0.1, 1e-5, false);
  EXPECT_TRUE(torch::allclose(y, plain));
}

TEST(SyncBatchNorm, GlobalBatchOfOneValueIsAClearError) {
  auto& comm = communicator();
  model::BatchNorm bn(2);
  bn->set_sync(std::make_shared<comm::SyncBatchNorm>(comm));
  auto x = torch::randn({comm.rank() == 0 ? 1 : 0, 2, 1, 1});
  try {
    bn->forward(x);
    FAIL() << "one value per channel in the whole world must be refused";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least two"), std::string::npos) << e.what();
  }
}

namespace {
// One training step of a fresh BatchNorm (fp64, random affine and statistics, the same on every
// rank) synchronised by `sync`, on `x` with upstream gradient `g`: output, grad_input,
// grad_weight, running mean and variance.
std::vector<torch::Tensor> bn_step(std::shared_ptr<comm::SyncBatchNorm> sync, const torch::Tensor& x,
                                   const torch::Tensor& g) {
  auto gen = at::detail::createCPUGenerator(99);
  model::BatchNorm bn(x.size(1));
  bn->to(torch::kFloat64);
  {
    torch::NoGradGuard ng;
    bn->weight.copy_(torch::rand({x.size(1)}, gen) + 0.5);
    bn->bias.copy_(torch::randn({x.size(1)}, gen));
    bn->running_mean.copy_(torch::randn({x.size(1)}, gen));
    bn->running_var.copy_(torch::rand({x.size(1)}, gen) + 0.5);
  }
  if (sync) bn->set_sync(sync);
  auto xi = x.clone().requires_grad_(true);
  auto y = bn->forward(xi);
  (y * g).sum().backward();
  return {y.detach(), xi.grad(), bn->weight.grad(), bn->running_mean.clone(),
          bn->running_var.clone()};
}

// This rank's rows of a fresh random global batch of `per_rank` rows a rank (drawn from a shared
// seed, so every rank can take any rank's rows), and its upstream gradient.
std::pair<torch::Tensor, torch::Tensor> rows_of(int64_t first_rank, int64_t ranks, int world) {
  const int64_t per_rank = 3;
  auto gen = at::detail::createCPUGenerator(77 + world);
  auto x = torch::randn({per_rank * world, 4, 3, 3}, gen, torch::kFloat64) * 1.5 + 0.25;
  auto g = torch::randn({per_rank * world, 4, 3, 3}, gen, torch::kFloat64);
  return {x.narrow(0, first_rank * per_rank, ranks * per_rank),
          g.narrow(0, first_rank * per_rank, ranks * per_rank)};
}
}  // namespace

// --sync-bn-group world: a communicator of one group holding every rank is today's SyncBatchNorm,
// to the bit.
TEST(SyncBatchNormGroups, AGroupOfTheWholeWorldEqualsWorldSyncBatchNorm) {
  auto& world_comm = communicator();
  comm::Communicator group(test_util::mpi_world(), std::chrono::seconds(60), world_comm.world_size());
  EXPECT_EQ(group.world_size(), world_comm.world_size());
  EXPECT_EQ(group.rank(), world_comm.rank());
  const auto [x, g] = rows_of(world_comm.rank(), 1, world_comm.world_size());
  const auto a = bn_step(std::make_shared<comm::SyncBatchNorm>(world_comm), x, g);
  const auto b = bn_step(std::make_shared<comm::SyncBatchNorm>(group), x, g);
  const char* names[] = {"output", "grad_input", "grad_weight", "running_mean", "running_var"};
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << names[i];
}

// --sync-bn-group 2 at 4 ranks: each group's statistics are those of BatchNorm on that group's
// samples alone (a 2-rank SyncBatchNorm run on them), not the world's.
TEST(SyncBatchNormGroups, GroupsOfTwoEqualBatchNormOnEachGroupsSamples) {
  const auto& world = test_util::mpi_world();
  if (world.size != 4) GTEST_SKIP() << "runs at world size 4";
  comm::Communicator group(world, std::chrono::seconds(60), 2);
  ASSERT_EQ(group.world_size(), 2);
  ASSERT_EQ(group.rank(), world.rank % 2);
  const int first_of_group = world.rank - world.rank % 2;
  const auto [x, g] = rows_of(world.rank, 1, 4);
  const auto mine = bn_step(std::make_shared<comm::SyncBatchNorm>(group), x, g);
  // Reference: plain BatchNorm, one process, on the group's two ranks' rows.
  const auto [gx, gg] = rows_of(first_of_group, 2, 4);
  const auto ref = bn_step(nullptr, gx, gg);
  const int64_t at = (world.rank % 2) * x.size(0);
  EXPECT_LE(rel_err(mine[0], ref[0].narrow(0, at, x.size(0))), 1e-10) << "output";
  EXPECT_LE(rel_err(mine[1], ref[1].narrow(0, at, x.size(0))), 1e-10) << "grad_input";
  auto grad_weight = mine[2].clone();
  group.all_reduce(grad_weight);  // each rank holds its share; the group's sum is the whole
  EXPECT_LE(rel_err(grad_weight, ref[2]), 1e-10) << "grad_weight";
  EXPECT_LE(rel_err(mine[3], ref[3]), 1e-10) << "running_mean";
  EXPECT_LE(rel_err(mine[4], ref[4]), 1e-10) << "running_var";
  // And not the world's statistics: the two groups hold different ones.
  auto world_mean = mine[3].clone();
  communicator().all_reduce(world_mean);
  EXPECT_GT(rel_err(world_mean / 4, mine[3]), 1e-3) << "the groups' statistics differ";
}

TEST(SyncBatchNorm, WorldSizeInvariance1x60Equals2x30) {
  auto& comm = communicator();
  if (comm.world_size() != 2) GTEST_SKIP() << "runs at world size 2";
  test_util::TempDir dir;
  auto c = test_util::synthetic_config(dir, 1200, 1, 30);
  c.max_steps = 20;
  // fp64: this ResNet's fp32 gradients at initialisation change by ~0.5% under a mere change of
  // summation order (PyTorch's own contiguous vs channels_last runs differ that much), so only
  // fp64 shows whether the two runs compute the same thing.
  c.precision = trainer::Precision::Fp64;
  c.log_every = 5;
  // SGD: Adam divides by the gradient's running RMS, which turns rounding-level differences in
  // near-zero gradients into full-size steps; SGD keeps the comparison at rounding level.
  c.optimizer = trainer::OptimizerKind::Sgd;
  c.lr = 0.05;
  c.channels_last = trainer::Toggle::Off;
  // 2 ranks x 30 with SyncBatchNorm...
  c.batch_size = 30;
  trainer::RunContext two;
  two.rank = comm.rank();
  two.world_size = 2;
  two.comm = &comm;
  trainer::Trainer distributed(c, two, data::make_synthetic(1200, 0), {});
  distributed.run();
  // ...against 1 rank x 60 with plain BatchNorm, computed on every rank.
  c.batch_size = 60;
  c.checkpoint_dir = dir / ("ckpt1_" + std::to_string(comm.rank()));
  c.log_dir = dir / ("runs1_" + std::to_string(comm.rank()));
  trainer::Trainer single(c, trainer::RunContext{}, data::make_synthetic(1200, 0), {});
  single.run();
  auto a = distributed.model().named_parameters();
  for (const auto& p : single.model().named_parameters()) {
    EXPECT_LE(rel_err(a[p.key()], p.value()), 1e-9) << p.key();
  }
  auto ab = distributed.model().named_buffers();
  for (const auto& b : single.model().named_buffers()) {
    if (b.value().is_floating_point()) {
      EXPECT_LE(rel_err(ab[b.key()], b.value()), 1e-9) << b.key();
    }
  }
}

TEST(SyncBatchNorm, ResNetWithSyncBatchNormEqualsPlainAtWorldOne) {
  auto& comm = communicator();
  if (comm.world_size() != 1) GTEST_SKIP() << "runs at world size 1";
  torch::manual_seed(3);
  auto plain = model::make_resnet("resnet14");
  torch::manual_seed(3);
  auto synced = model::make_resnet("resnet14");
  plain->to(torch::kFloat64);  // fp64: see WorldSizeInvariance for why not fp32
  synced->to(torch::kFloat64);
  model::set_batch_norm_sync(*synced, std::make_shared<comm::SyncBatchNorm>(comm));
  auto x = torch::randn({8, 3, 32, 32}, torch::kFloat64);
  auto y = torch::randint(0, 10, {8});
  auto a = plain->forward(x), b = synced->forward(x);
  EXPECT_LE(rel_err(b, a), 1e-12);
  torch::nn::functional::cross_entropy(a, y).backward();
  torch::nn::functional::cross_entropy(b, y).backward();
  auto pb = synced->named_parameters();
  for (const auto& p : plain->named_parameters()) {
    EXPECT_LE(rel_err(pb[p.key()].grad(), p.value().grad()), 1e-10) << p.key();
  }
}
