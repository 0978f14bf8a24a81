// comm/: the Communicator and the gradient Reducer under mpirun -np 1..4 on CPU tensors (MPI),
// and the Reducer's CUDA variants (ReducerCuda: NCCL, the ranks sharing the GPUs there are).
// References are computed the simple way: one process on the concatenated batch.
#include <gtest/gtest.h>
#include <thread>
#include "comm/communicator.h"
#include "comm/errors.h"
#include "comm/model_sync.h"
#include "comm/reducer.h"
#include "data/synthetic.h"
#include "model/resnet.h"
#include "tests/comm/mpi_test_env.h"
#include "tests/test_util.h"
#include "trainer/loop/trainer.h"

using namespace dt;

namespace {

comm::Communicator& communicator() { return test_util::cpu_communicator(); }

// The communicator whose collectives reduce tensors on `device`.
comm::Communicator& communicator_for(const torch::Device& device) {
  return device.is_cuda() ? *test_util::cuda_communicator() : communicator();
}

// A small net with no BatchNorm (per-rank BN statistics would differ from the full batch's by
// design; SyncBatchNorm has its own suite) and parameters of several sizes.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).stride(2)));
    c3 = register_module("c3", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 16, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(16, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(c1(x));
    x = torch::relu(c2(x));
    x = torch::relu(c3(x));
    return fc(x.mean({2, 3}));
  }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>();
}

// Fresh random global batch, the same on every rank (drawn from a shared seed).
std::pair<torch::Tensor, torch::Tensor> global_batch(int64_t n, torch::ScalarType dtype, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return {torch::randn({n, 3, 12, 12}, gen).to(dtype), torch::randint(0, 10, {n}, gen, torch::kInt64)};
}

void check_equivalence(torch::ScalarType dtype, double tolerance, bool overlap, int64_t accumulate,
                       torch::Device device = torch::kCPU) {
  auto& comm = communicator_for(device);
  const int world = comm.world_size(), rank = comm.rank();
  const int64_t per_rank = 6;  // per micro-batch
  const int64_t n = per_rank * world * accumulate;
  auto [x_cpu, y_cpu] = global_batch(n, dtype, 1234 + accumulate);
  const auto x = x_cpu.to(device), y = y_cpu.to(device);

  torch::manual_seed(7);
  Net reference;
  reference->to(device, dtype);
  torch::manual_seed(7 + rank);  // different on purpose: broadcast_model must fix it
  Net replica;
  replica->to(device, dtype);
  comm::broadcast_model(*replica, comm);
  for (size_t i = 0; i < reference->parameters().size(); ++i) {
    ASSERT_TRUE(torch::equal(reference->parameters()[i], replica->parameters()[i]));
  }

  // Reference: one process, whole batch, mean loss.
  torch::nn::functional::cross_entropy(reference->forward(x), y).backward();

  // Distributed: micro-batch m of rank r is rows [(m*world + r)*per_rank, ...).
  comm::ReducerOptions options;
  options.bucket_mb = 0.004;  // ~1000 floats: forces several buckets
  options.first_bucket_mb = 0.001;
  options.overlap = overlap;
  comm::Reducer reducer(replica->named_parameters(), comm, options);
  ASSERT_GE(reducer.bucket_count(), 3u);
  for (int64_t m = 0; m < accumulate; ++m) {
    reducer.prepare(m + 1 == accumulate);
    const int64_t begin = (m * world + rank) * per_rank;
    auto loss = torch::nn::functional::cross_entropy(
        replica->forward(x.narrow(0, begin, per_rank)), y.narrow(0, begin, per_rank));
    (loss / double(accumulate)).backward();
  }
  reducer.finish();

  auto ref_params = reference->named_parameters();
  auto rep_params = replica->named_parameters();
  for (const auto& p : ref_params) {
    const auto& got = rep_params[p.key()].grad();
    EXPECT_LE(rel_err(got, p.value().grad()), tolerance)
        << p.key() << " world " << world << " rank " << rank;
  }
  // Then one optimizer step on each: parameters agree too.
  torch::optim::SGD(reference->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)).step();
  torch::optim::SGD(replica->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)).step();
  for (const auto& p : ref_params) {
    EXPECT_LE(rel_err(rep_params[p.key()], p.value()), tolerance) << p.key();
  }
}

// Parameters and buffers (BatchNorm running statistics included).
uint64_t parameter_hash(torch::nn::Module& m) {
  uint64_t h = 1469598103934665603ULL;
  auto tensors = m.parameters();
  for (auto b : m.buffers()) tensors.push_back(b);
  for (auto t : tensors) {
    auto c = t.detach().contiguous();
    const auto* b = static_cast<const unsigned char*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) h = (h ^ b[i]) * 1099511628211ULL;
  }
  return h;
}

}  // namespace

TEST(Reducer, GradientsEqualSingleProcessFp64) { check_equivalence(torch::kFloat64, 1e-10, true, 1); }
TEST(Reducer, GradientsEqualSingleProcessFp32) { check_equivalence(torch::kFloat32, 1e-5, true, 1); }
TEST(Reducer, GradientsEqualWithoutOverlap) { check_equivalence(torch::kFloat64, 1e-10, false, 1); }
TEST(Reducer, GradientAccumulationEqualsTheWholeBatch) {
  check_equivalence(torch::kFloat64, 1e-10, true, 3);
}

// The same on CUDA tensors: buckets all-reduced by NCCL on its own stream, handed back through
// events (comm/nccl_backend.h), checked against one process on the whole batch on the same GPU.
TEST(ReducerCuda, GradientsEqualSingleProcessFp64) {
  DT_REQUIRE_CUDA_WORLD();
  check_equivalence(torch::kFloat64, 1e-10, true, 1, test_util::cuda_device());
}
TEST(ReducerCuda, GradientsEqualSingleProcessFp32) {
  DT_REQUIRE_CUDA_WORLD();
  check_equivalence(torch::kFloat32, 1e-5, true, 1, test_util::cuda_device());
}
TEST(ReducerCuda, GradientsEqualWithoutOverlap) {
  DT_REQUIRE_CUDA_WORLD();
  check_equivalence(torch::kFloat64, 1e-10, false, 1, test_util::cuda_device());
}
TEST(ReducerCuda, GradientAccumulationEqualsTheWholeBatch) {
  DT_REQUIRE_CUDA_WORLD();
  check_equivalence(torch::kFloat64, 1e-10, true, 3, test_util::cuda_device());
}

namespace {
// Three heads on a shared trunk: `all` is used on every rank, `some` by some ranks (or some
// micro-batches), `none` on no rank (a branch never taken, a head left out of the loss).
// `none` is registered first, so its bucket launches last: the other buckets can launch during
// backward on a rank that uses `some` and only in finish() on one that does not.
struct BranchyImpl : torch::nn::Module {
  BranchyImpl() {
    none = register_module("none", torch::nn::Linear(7, 3));
    trunk = register_module("trunk", torch::nn::Linear(5, 7));
    all = register_module("all", torch::nn::Linear(7, 3));
    some = register_module("some", torch::nn::Linear(7, 3));
  }
  torch::Tensor loss(const torch::Tensor& x, bool use_some) {
    auto h = torch::tanh(trunk(x));
    auto l = all(h).pow(2).mean();
    return use_some ? l + some(h).sin().mean() : l;
  }
  torch::nn::Linear none{nullptr}, trunk{nullptr}, all{nullptr}, some{nullptr};
};
TORCH_MODULE(Branchy);

// Rank r's micro-batch m: a fresh random batch (every rank can draw any rank's), and whether it
// uses `some`: even ranks at one micro-batch; with two micro-batches every rank in one of them.
torch::Tensor branchy_input(int r, int64_t m) {
  auto gen = at::detail::createCPUGenerator(500 + 10 * r + m);
  return torch::randn({4, 5}, gen).to(torch::kFloat64);
}
bool uses_some(int r, int64_t m) { return (r + m) % 2 == 0; }

void check_unused_parameters(double bucket_mb, bool overlap, int64_t accumulate) {
  auto& comm = communicator();
  const int world = comm.world_size(), rank = comm.rank();
  SCOPED_TRACE("bucket_mb " + std::to_string(bucket_mb) + " overlap " + std::to_string(overlap) +
               " accumulate " + std::to_string(accumulate) + " world " + std::to_string(world) +
               " rank " + std::to_string(rank));
  torch::manual_seed(21);
  Branchy replica, reference;
  replica->to(torch::kFloat64);
  reference->to(torch::kFloat64);
  {
    torch::NoGradGuard copy_weights;
    for (size_t i = 0; i < replica->parameters().size(); ++i) {
      reference->parameters()[i].set_data(replica->parameters()[i].detach().clone());
    }
  }
  // Reference, one process: the mean over ranks of each rank's own gradients.
  torch::Tensor total = torch::zeros({}, torch::kFloat64);
  for (int r = 0; r < world; ++r) {
    for (int64_t m = 0; m < accumulate; ++m) {
      total = total + reference->loss(branchy_input(r, m), uses_some(r, m)) / double(accumulate);
    }
  }
  (total / double(world)).backward();

  comm::ReducerOptions options;
  options.bucket_mb = bucket_mb;
  options.first_bucket_mb = bucket_mb;
  options.overlap = overlap;
  comm::Reducer reducer(replica->named_parameters(), comm, options);
  auto opt = torch::optim::SGD(replica->parameters(),
                               torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.1));
  for (int pass = 0; pass < 2; ++pass) {  // the second pass finds the buckets' flags reused
    opt.zero_grad();
    for (int64_t m = 0; m < accumulate; ++m) {
      reducer.prepare(m + 1 == accumulate);
      (replica->loss(branchy_input(rank, m), uses_some(rank, m)) / double(accumulate)).backward();
    }
    reducer.finish();
    auto got = replica->named_parameters();
    for (const auto& p : reference->named_parameters()) {
      const auto& g = got[p.key()].grad();
      if (p.key().rfind("none.", 0) == 0) {
        EXPECT_FALSE(g.defined()) << p.key() << ": no rank used it, so it has no gradient (as DDP)";
        continue;
      }
      ASSERT_TRUE(g.defined()) << p.key();
      EXPECT_LE(rel_err(g, p.value().grad()), 1e-12) << p.key();
    }
  }
  // An SGD step with weight decay moves every parameter with a gradient, and not the one no
  // rank used (a zero gradient would have decayed it).
  const auto none_before = replica->none->weight.detach().clone();
  const auto some_before = replica->some->weight.detach().clone();
  opt.step();
  EXPECT_TRUE(torch::equal(replica->none->weight, none_before));
  EXPECT_FALSE(torch::equal(replica->some->weight, some_before));
}
}  // namespace

TEST(Reducer, UnusedParametersAreAveragedOrLeftWithoutGradient) {
  check_unused_parameters(/*bucket_mb=*/25, /*overlap=*/true, 1);  // one bucket for all
  check_unused_parameters(/*bucket_mb=*/1e-6, /*overlap=*/true, 1);  // a bucket per parameter
  check_unused_parameters(/*bucket_mb=*/1e-6, /*overlap=*/false, 1);
  // `some` used in one micro-batch of two on every rank: its gradient is kept, not zeroed.
  check_unused_parameters(/*bucket_mb=*/1e-6, /*overlap=*/true, 2);
}

// With collectives of its own during backward (SyncBatchNorm's), a parameter used on some
// ranks only could have reordered the buckets against them: refused, naming the rank and the
// parameter (by name, as the README promises), on the ranks that lacked it; with --no-overlap it
// is safe and averaged.
TEST(Reducer, PartlyUsedParameterWithCollectivesInBackwardIsRefusedUnlessNoOverlap) {
  auto& comm = communicator();
  const int world = comm.world_size(), rank = comm.rank();
  if (world < 2) GTEST_SKIP() << "needs 2 ranks";
  for (const bool overlap : {true, false}) {
    torch::manual_seed(21);
    Branchy net;
    net->to(torch::kFloat64);
    comm::ReducerOptions options;
    options.bucket_mb = 1e-6;
    options.first_bucket_mb = 1e-6;
    options.overlap = overlap;
    options.collectives_in_backward = true;
    comm::Reducer reducer(net->named_parameters(), comm, options);
    reducer.prepare(true);
    net->loss(branchy_input(rank, 0), uses_some(rank, 0)).backward();
    if (overlap && !uses_some(rank, 0)) {
      try {
        reducer.finish();
        ADD_FAILURE() << "rank " << rank << " lacked `some` but finish() accepted it";
      } catch (const comm::CommError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("rank " + std::to_string(rank) + ": parameter some."), std::string::npos) << what;
        EXPECT_NE(what.find("--no-overlap"), std::string::npos) << what;
      }
    } else {
      EXPECT_NO_THROW(reducer.finish()) << "overlap " << overlap << " rank " << rank;
      EXPECT_TRUE(net->some->weight.grad().defined());
    }
  }
}

TEST(Reducer, BucketsLaunchBeforeBackwardEnds) {
  auto& comm = communicator();
  torch::manual_seed(1);
  auto net = model::make_resnet("resnet14");  // deep enough for backward to take a while
  comm::broadcast_model(*net, comm);
  comm::ReducerOptions options;
  options.bucket_mb = 0.1;
  options.first_bucket_mb = 0.02;
  comm::Reducer reducer(net->named_parameters(), comm, options);
  ASSERT_GE(reducer.bucket_count(), 4u);
  auto [x, y] = global_batch(16, torch::kFloat32, 99);
  x = torch::nn::functional::interpolate(
      x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{32, 32}));
  for (int iter = 0; iter < 2; ++iter) {
    reducer.prepare(true);
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    const auto backward_end = comm::Clock::now();
    reducer.finish();
    const auto& t = reducer.timings();
    ASSERT_EQ(t.size(), reducer.bucket_count());
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      EXPECT_LT(t[i].launched, backward_end) << "bucket " << i << " of " << t.size()
                                             << " launched only after backward";
      EXPECT_LE(t[i].launched, t[i].completed);
    }
    for (size_t i = 1; i < t.size(); ++i) EXPECT_LE(t[i - 1].launched, t[i].launched);
  }
}

TEST(Reducer, ModelMismatchNamesTheRank) {
  auto& comm = communicator();
  if (comm.world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  auto net = model::make_resnet(comm.rank() == 1 ? "resnet20" : "resnet14");
  try {
    comm::broadcast_model(*net, comm);
    FAIL() << "a different model on rank 1 was not caught";
  } catch (const comm::RankMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 has"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 0 has"), std::string::npos) << e.what();
  }
}

TEST(Communicator, ValueMismatchNamesTheRankAndBothValues) {
  auto& comm = communicator();
  if (comm.world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  comm::require_same_on_all_ranks(comm, 42, "same everywhere");  // must not throw
  const int odd = comm.world_size() - 1;
  try {
    comm::require_same_on_all_ranks(comm, comm.rank() == odd ? 0xbad : 0x900d, "the value");
    FAIL();
  } catch (const comm::RankMismatch& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank " + std::to_string(odd) + " has bad"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 0 has 900d"), std::string::npos) << msg;
  }
}

TEST(Communicator, CollectivesAgreeWithLocalComputation) {
  auto& comm = communicator();
  const int world = comm.world_size(), rank = comm.rank();
  auto gen = at::detail::createCPUGenerator(5);
  auto all = torch::randn({world, 37}, gen, torch::kFloat64);  // every rank's contribution
  auto mine = all[rank].clone();
  comm.all_reduce(mine);
  EXPECT_LE(rel_err(mine, all.sum(0)), 1e-14);
  auto mx = all[rank].clone();
  comm.all_reduce(mx, comm::ReduceOp::Max);
  EXPECT_TRUE(torch::equal(mx, std::get<0>(all.max(0))));
  auto gathered = comm.all_gather(all[rank].clone());
  EXPECT_TRUE(torch::equal(gathered, all));
  auto b = rank == 0 ? all[0].clone() : torch::zeros({37}, torch::kFloat64);
  comm.broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b, all[0]));
  comm.barrier();
}

TEST(Communicator, WaitPastTheDeadlineThrowsNamingTheCollective) {
  auto& world = test_util::mpi_world();
  if (world.size < 2) GTEST_SKIP() << "needs 2 ranks";
  comm::Communicator short_deadline(world, std::chrono::milliseconds(300));
  auto t = torch::ones({4});
  if (world.rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto work = short_deadline.all_reduce_async(t);
  if (world.rank != 1) {
    try {
      work->wait();
      FAIL() << "no timeout although rank 1 arrived 1.5 s late";
    } catch (const comm::CommTimeout& e) {
      EXPECT_NE(std::string(e.what()).find("all_reduce"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(world.rank)),
                std::string::npos) << e.what();
    }
  }
  while (!work->test()) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // clean up
  EXPECT_TRUE(torch::equal(t, torch::full({4}, float(world.size))));
}

TEST(Trainer, ReplicasStayBitIdenticalFor20Steps) {
  auto& comm = communicator();
  test_util::TempDir dir;
  auto c = test_util::synthetic_config(dir, 2000, 1, 8);
  c.max_steps = 20;
  c.bucket_mb = 0.2;
  trainer::RunContext ctx;
  ctx.rank = comm.rank();
  ctx.world_size = comm.world_size();
  ctx.comm = &comm;
  trainer::Trainer t(c, ctx, data::make_synthetic(2000, 0), data::make_synthetic(200, 1));
  auto summary = t.run();
  EXPECT_EQ(summary.steps, 20);
  // With SyncBatchNorm (on by default above one rank) the running statistics agree too.
  comm::require_same_on_all_ranks(comm, parameter_hash(t.model()),
                                  "parameter and buffer hash after 20 steps");
}
