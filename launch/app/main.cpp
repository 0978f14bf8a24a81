// dist_train: one process per rank (mpirun/srun), or one process alone for debugging.
//
// Failure contract: bad input (flags, data files, checkpoints, environment) prints one line and
// exits with code 2 -- under a launcher the ranks agree first (comm::first_failing_rank), so one
// rank prints and all end through MPI_Finalize; any other failure on any rank aborts the whole
// job (MPI_Abort) with a message naming the rank, so that no rank is left waiting in a collective.
#include <torch/torch.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <cstdio>
#include <future>
#include <thread>
#if DT_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif
#include "comm/communicator.h"
#include "common/errors.h"
#include "comm/errors.h"
#include "common/fnv1a.h"
#include "comm/world.h"
#include "data/cifar10.h"
#include "data/errors.h"
#include "data/fingerprint.h"
#include "data/synthetic.h"
#include "launch/app/cli.h"
#include "launch/app/device.h"
#include "launch/app/global_batch.h"
#include "launch/app/kernels.h"
#include "launch/app/nccl_env.h"
#include "launch/app/sync_bn_group.h"
#include "launch/app/signals.h"
#include "trainer/config/errors.h"
#include "trainer/loop/replica_check.h"
#include "trainer/loop/trainer.h"

namespace {

constexpr int64_t kSyntheticDefault = 10000;
// Held here so that the failure path in main() can abort them before MPI_Abort.
std::unique_ptr<dt::comm::Communicator> g_comm;
std::unique_ptr<dt::comm::Communicator> g_sync_bn_comm;  // SyncBatchNorm's own (--sync-bn-group)

// Bad input (flags, data, checkpoints, environment, ranks that disagree): 2. Replicas that
// diverged: 3. Anything else: 1.
int exit_code(const std::exception& e) {
  if (dynamic_cast<const dt::BadInput*>(&e)) return 2;
  if (dynamic_cast<const dt::trainer::ReplicaDivergence*>(&e)) return 3;
  return 1;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "NCCL_* as the user set them" : out;
}

// ncclCommAbort can itself block on a peer that is stuck in a kernel; the job must end all the
// same. The abort runs on its own thread, and after `limit` MPI_Abort goes ahead without it.
void abort_communicators_within(std::chrono::seconds limit) {
  if (!g_comm) return;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::thread([done] {
    if (g_sync_bn_comm) g_sync_bn_comm->abort();
    g_comm->abort();
    done->set_value();
  }).detach();
  if (finished.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "dist_train: the NCCL abort did not return within %lld s; ending the job "
                 "without it\n", static_cast<long long>(limit.count()));
  }
}

// How long ranks wait for each other to finish checking their own input, before the
// configuration (and so --comm-timeout) is known to be valid everywhere.
constexpr std::chrono::seconds kInputCheckTimeout{600};

void print_error(const dt::comm::World& world, const std::exception& e, int code) {
  // A RankMismatch names the ranks that differ itself; the printing rank (0) is not one of them.
  const bool names_ranks = dynamic_cast<const dt::comm::RankMismatch*>(&e) != nullptr;
  const std::string where =
      world.size > 1 && !names_ranks ? "rank " + std::to_string(world.rank) + ": " : "";
  // LibTorch's errors (out of memory, say) carry a C++ stack trace in what(): not for users.
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  const char* what = torch_error ? torch_error->what_without_backtrace() : e.what();
  if (code == 1) {
    std::fprintf(stderr, "dist_train: rank %d on %s failed: %s\n", world.rank, world.host.c_str(),
                 what);
  } else {
    std::fprintf(stderr, "dist_train: error: %s%s\n", where.c_str(), what);
  }
}

// Under a launcher, --help must have been given to every rank or to none (an MPMD line may give
// it to some only, and the others would wait for the help ranks at their first collective until
// its deadline). A help rank takes part in the input check as failing; then every rank that found
// a failure learns whether it was only --help, and from where. Returns the first rank without
// --help (world.size: every rank had it).
int help_agreement(const dt::comm::World& world, bool this_rank_help) {
  return dt::comm::first_failing_rank(world, !this_rank_help, kInputCheckTimeout);
}

// --help: rank 0 prints the help and every rank exits 0; under a launcher only if every rank was
// given it (help_agreement), else all exit 2, the lowest help rank saying why.
int help(const dt::comm::World& world, const std::string& text) {
  using namespace dt;
  if (world.mpi && world.size > 1) {
    const int first = comm::first_failing_rank(world, true, kInputCheckTimeout);  // the input check
    const int without = help_agreement(world, true);
    if (without < world.size) {
      std::exception_ptr cause;
      if (world.rank == first) {
        cause = std::make_exception_ptr(trainer::ConfigError(
            "--help was given to rank " + std::to_string(first) + " but not to rank " +
            std::to_string(without) + " (give it to every rank, or to none)"));
      }
      throw comm::JointStop(cause);
    }
  }
  if (world.rank == 0) std::printf("%s\n", text.c_str());
  return 0;
}

int run(dt::comm::World& world, int argc, char** argv) {
  using namespace dt;
  // Each rank checks its own input first (flags, environment, data files). Under a launcher the
  // ranks then agree: if any rejected its input, the lowest such rank prints its one line and
  // every rank exits 2 together (no MPI_Abort, no copy of the line per rank).
  launch::CliResult cli;
  std::string source;
  std::vector<std::string> nccl_settings;  // what prepare_nccl_environment set, for the log
  bool gpu_shared = false;                 // --share-gpus put several ranks on this rank's GPU
  trainer::RunContext ctx;
  data::Dataset train, test;
  std::exception_ptr bad_input;
  try {
    cli = launch::parse_cli(argc, argv);
    if (cli.help) return help(world, cli.help_text);
    source = launch::resolve_data_source(cli, kSyntheticDefault);
    auto& config = cli.config;
    if (config.threads > 0) torch::set_num_threads(int(config.threads));
    launch::configure_kernels(config);

    ctx.rank = world.rank;
    ctx.world_size = world.size;
    // Resolved before the configuration is compared and printed, so both show the group size
    // and the batch per rank.
    config.sync_bn_group = std::to_string(launch::resolve_sync_bn_group(config.sync_bn_group, world));
    config.batch_size = launch::resolve_batch_per_rank(config, world.size);
    ctx.device = launch::resolve_device(config.device, world, config.share_gpus);
    if (ctx.device.is_cuda()) {
      const bool shared = launch::shares_gpu(world, launch::visible_gpus());
      if (shared) launch::require_shareable_gpu(int(ctx.device.index()));
      // Before the process's first NCCL call, which reads them once.
      nccl_settings = launch::prepare_nccl_environment(world, shared);
      gpu_shared = shared;
    }
#if DT_HAVE_CUDA
    // Every CUDA call of this process (current streams, kernels, NCCL) goes to this rank's GPU.
    if (ctx.device.is_cuda()) c10::cuda::set_device(ctx.device.index());
#endif
    ctx.stop_requested = launch::stop_requested;
    if (ctx.device.is_cuda()) torch::cuda::manual_seed_all(config.seed);

    // All input is read and validated before anything is logged, so bad input gives one line.
    // --eval-only needs the test split alone (a folder holding only test_batch.bin will do).
    if (config.synthetic > 0) {
      if (!config.eval_only) train = data::make_synthetic(config.synthetic, config.seed);
      test = data::make_synthetic(std::max<int64_t>(config.synthetic / 5, 1000), config.seed + 1);
    } else {
      if (!config.eval_only) train = data::read_cifar10(config.data_dir, data::Split::Train);
      test = data::read_cifar10(config.data_dir, data::Split::Test);
    }
  } catch (const std::exception& e) {
    if (!world.mpi || exit_code(e) != 2) throw;
    bad_input = std::current_exception();
  }
  if (world.mpi) {
    const int first = comm::first_failing_rank(world, bad_input != nullptr, kInputCheckTimeout);
    if (first < world.size) {
      help_agreement(world, false);  // a rank given --help counts as failing here: which was it?
      throw comm::JointStop(first == world.rank ? bad_input : nullptr);
    }
  }
  auto& config = cli.config;
  // What every rank must agree on: the resolved flags, the kind of device (a CPU rank would
  // leave the GPU ranks waiting in NCCL's set-up) and the data itself (the same path may hold
  // different copies on different nodes). Rank 0 prints it with the hash compared.
  auto describe = [](const char* split, const data::Dataset& set) {
    return fmt::format("{} set = {} images, fingerprint {:016x}\n", split, set.size(),
                       data::fingerprint(set));
  };
  const std::string resolved = trainer::to_string(config) + "resolved device type = " +
                               (ctx.device.is_cuda() ? "cuda" : "cpu") + "\n" +
                               describe("training", train) + describe("test", test);

  if (world.mpi) {
    const auto timeout = std::chrono::milliseconds(int64_t(config.comm_timeout_s * 1000));
    g_comm = std::make_unique<comm::Communicator>(world, timeout);
    // The first collective, over MPI and before NCCL exists.
    comm::require_same_text_on_all_ranks(*g_comm, resolved,
                                         "the resolved configuration (flags, $CIFAR10_DIR, device, data)");
    if (ctx.device.is_cuda()) g_comm->start_nccl(int(ctx.device.index()));
    ctx.comm = g_comm.get();
    if (trainer::sync_batch_norm(config, world.size)) {
      // Its own communicator (and NCCL stream), over its group: a collective, on every rank.
      g_sync_bn_comm = std::make_unique<comm::Communicator>(world, timeout,
                                                            std::stoi(config.sync_bn_group));
      if (ctx.device.is_cuda()) g_sync_bn_comm->start_nccl(int(ctx.device.index()));
      ctx.sync_bn_comm = g_sync_bn_comm.get();
    }
    // Where each rank landed: that node-local ranks (and so GPUs) are counted per host shows here.
    spdlog::info("on host {}: local rank {} of {}", world.host, world.local_rank, world.local_size);
    if (gpu_shared) {
      spdlog::warn("--share-gpus: {} ranks on this node share its GPUs; this rank runs on {} and "
                   "NCCL connects it over sockets as a separate host ({}): correctness checks "
                   "only, its speed figures mean nothing",
                   world.local_size, ctx.device.str(), joined(nccl_settings));
    }
  }
  trainer::Trainer t(config, ctx, std::move(train), std::move(test));
  if (world.rank == 0) {
    spdlog::info("dist_train: {} rank(s); {}", world.size, source);
    spdlog::info("resolved configuration (hash {:016x}, compared across ranks):\n{}",
                 common::fnv1a(resolved), resolved);
  }

  t.run();  // logs the end-of-run summary and writes summary.json (rank 0)
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dt::comm::World world;
  try {
    world = dt::comm::init_world(&argc, &argv);
    dt::launch::install_stop_handlers();  // after MPI_Init, so ours are the handlers in force
    // The log goes to stderr, so that stdout carries only results (--eval-only's JSON line).
    spdlog::set_default_logger(spdlog::stderr_color_mt("dist_train"));
    spdlog::set_pattern(world.size > 1 ? "[%H:%M:%S.%e] [rank " + std::to_string(world.rank) + "] %v"
                                       : "[%H:%M:%S.%e] %v");
    const int code = run(world, argc, argv);
    g_sync_bn_comm.reset();
    g_comm.reset();
    dt::comm::finalize_world(world);
    return code;
  } catch (const dt::comm::RankMismatch& e) {
    // Raised on every rank alike (each compared the same gathered values): rank 0 says it once,
    // and all finish MPI normally.
    if (world.rank == 0) print_error(world, e, 2);
    g_sync_bn_comm.reset();
    g_comm.reset();
    dt::comm::finalize_world(world);
    return 2;
  } catch (const dt::comm::JointStop& stop) {
    // Every rank is here: one prints, all finish MPI normally.
    if (stop.cause) {
      try {
        std::rethrow_exception(stop.cause);
      } catch (const std::exception& e) {
        print_error(world, e, 2);
      }
    }
    g_sync_bn_comm.reset();
    g_comm.reset();
    dt::comm::finalize_world(world);
    return 2;
  } catch (const std::exception& e) {
    const int code = exit_code(e);
    print_error(world, e, code);
    abort_communicators_within(std::chrono::seconds(10));
    dt::comm::abort_world(world, code);
  }
}
