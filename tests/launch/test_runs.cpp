// Whole runs of the dist_train binary on CPU (single process and under mpirun): exact resume,
// preemption by SIGTERM, a killed rank, a stalled rank, a configuration mismatch, NaN losses,
// and a checkpoint writer killed mid-write.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include "model/resnet.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/checkpoint.h"

using namespace dt;
using test_util::TempDir;

namespace {

const std::string kCommon =
    " --synthetic 600 --batch-size 20 --epochs 3 --threads 1 --device cpu --log-every 5"
    " --eval-every 0 --augment standard --seed 11";

std::string binary() { return test_util::dist_train_binary(); }
std::string mpirun(int np) {
  return test_util::mpirun() + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(np) + " -x DT_FAULT_INJECT ";
}
std::string dirs(const TempDir& d, const std::string& name) {
  return " --log-dir " + (d / name) + " --checkpoint-dir " + (d / name);
}

// Every tensor of the two checkpoints' models is bit-identical.
void expect_same_model(const std::string& a, const std::string& b) {
  auto ma = model::make_resnet("resnet14"), mb = model::make_resnet("resnet14");
  trainer::load_checkpoint(a, *ma, nullptr, trainer::OptimizerKind::Adam);
  trainer::load_checkpoint(b, *mb, nullptr, trainer::OptimizerKind::Adam);
  auto sa = trainer::state_dict(*ma), sb = trainer::state_dict(*mb);
  for (const auto& kv : sa) EXPECT_TRUE(torch::equal(kv.value(), sb.at(kv.key()))) << kv.key();
}

// The number after "KEY": in `text` (a JSON line), or NaN when absent.
double json_number(const std::string& text, const std::string& key) {
  const auto at = text.find("\"" + key + "\": ");
  return at == std::string::npos ? std::nan("") : std::stod(text.substr(at + key.size() + 4));
}
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The real test set's accuracy of `checkpoint` (resnet14, trained enough to beat chance, 0.1)
// by `ours`, a dist_train --eval-only command line, is PyTorch's alone
// (launch/bench/eval_checkpoint.py with `python_flags`) within `tolerance`: fp32 either way, but
// other kernels, so an image whose top two logits nearly tie may go the other way.
void expect_python_agrees(const std::string& ours, const std::string& checkpoint,
                          const std::string& python_flags, double tolerance) {
  auto a = test_util::run_command("(" + ours + " 2>/dev/null)");
  auto b = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                  "/launch/bench/eval_checkpoint.py resnet14 " + checkpoint + " " +
                                  python_flags + " --data " + test_util::cifar_dir() + " 2>/dev/null");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  const double x = json_number(a.output, "test_accuracy"), y = json_number(b.output, "test_accuracy");
  EXPECT_GT(x, 0.15) << a.output;
  EXPECT_NEAR(x, y, tolerance) << python_flags << "\n" << a.output << "\n" << b.output;
}

double seconds_of(const std::function<void()>& f) {
  auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST(Runs, InterruptedAndResumedEqualsUninterrupted) {
  TempDir d;
  auto full = test_util::run_command(binary() + kCommon + " --max-steps 50" + dirs(d, "a"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // Stop mid-epoch 2 (30 steps per epoch), then resume from last.pt.
  auto first = test_util::run_command(binary() + kCommon + " --max-steps 37" + dirs(d, "b"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = test_util::run_command(binary() + kCommon + " --max-steps 50 --resume auto" + dirs(d, "b"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
  expect_same_model(d / "a/last.pt", d / "b/last.pt");
}

TEST(Runs, SigtermWritesLastAndResumeContinuesExactly) {
  TempDir d;
  // Evaluation every epoch, but not on the stop: a preempted job saves first.
  const std::string args = " --max-steps 150 --epochs 5 --eval-every 1";
  auto full = test_util::run_command(binary() + kCommon + args + dirs(d, "a"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // SIGTERM once the run has logged step 20, wherever it then is.
  auto cmd = binary() + kCommon + args + dirs(d, "b");
  auto r = test_util::run_command(
      "(" + cmd + ") > " + (d / "log") + " 2>&1 & pid=$!; "
      "until grep -q 'step 20/' " + (d / "log") + "; do sleep 0.05; done; "
      "kill -TERM $pid; wait $pid; rc=$?; cat " + (d / "log") + "; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << "a preempted run exits cleanly\n" << r.output;
  ASSERT_NE(r.output.find("stopped on request"), std::string::npos) << r.output;
  ASSERT_NE(r.output.find("--resume auto"), std::string::npos) << r.output;
  const auto stopped_line = r.output.find("stopped: train loss");
  ASSERT_NE(stopped_line, std::string::npos) << r.output;
  EXPECT_EQ(r.output.substr(stopped_line, r.output.find('\n', stopped_line) - stopped_line).find("test"),
            std::string::npos) << "no evaluation before the stop's checkpoint\n" << r.output;
  ASSERT_TRUE(std::filesystem::exists(d / "b/last.pt"));
  auto resumed = test_util::run_command(cmd + " --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_model(d / "a/last.pt", d / "b/last.pt");
}

TEST(Runs, KilledRankEndsTheJobAndResumeFinishesIdentically) {
  TempDir d;
  const std::string run = mpirun(2) + binary() + kCommon + " --max-steps 30 --checkpoint-every-steps 5";
  auto full = test_util::run_command("DT_FAULT_INJECT= " + run + dirs(d, "a"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  test_util::CommandResult killed;
  const double took = seconds_of([&] {
    killed = test_util::run_command("DT_FAULT_INJECT=rank=1,step=12,action=kill " + run + dirs(d, "b"));
  });
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  EXPECT_LT(took, 30.0) << "mpirun must end the job within 30 s of a rank's death";
  auto resumed = test_util::run_command("DT_FAULT_INJECT= " + run + " --resume auto" + dirs(d, "b"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  expect_same_model(d / "a/last.pt", d / "b/last.pt");
}

// Mid-epoch, the rest of the epoch's order depends on the seed and the training set: a resume
// that changes either is refused (exit 2, naming both values); other changes are listed.
TEST(Runs, ResumeRefusesAChangedSeedMidEpochAndListsOtherChanges) {
  TempDir d;
  auto first = test_util::run_command(binary() + kCommon + " --max-steps 37" + dirs(d, "a"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto with = [](const std::string& from, const std::string& to) {
    std::string args = kCommon;
    return args.replace(args.find(from), from.size(), to);
  };
  auto seed = test_util::run_command(binary() + with("--seed 11", "--seed 12") + " --resume auto" +
                                     dirs(d, "a"));
  EXPECT_EQ(seed.exit_code, 2) << seed.output;
  EXPECT_NE(seed.output.find("stopped 140 samples into epoch 2 with --seed 11, this run has --seed 12"),
            std::string::npos) << seed.output;
  auto data = test_util::run_command(binary() + with("--synthetic 600", "--synthetic 700") +
                                     " --resume auto" + dirs(d, "a"));
  EXPECT_EQ(data.exit_code, 2) << data.output;
  EXPECT_NE(data.output.find("600-sample training set, this run's has 700"), std::string::npos)
      << data.output;
  auto lr = test_util::run_command(binary() + kCommon + " --max-steps 40 --lr 0.0005 --resume auto" +
                                   dirs(d, "a"));
  EXPECT_EQ(lr.exit_code, 0) << lr.output;
  EXPECT_NE(lr.output.find("changed since"), std::string::npos) << lr.output;
  EXPECT_NE(lr.output.find("lr: 0.001 -> 0.0005"), std::string::npos) << lr.output;
}

TEST(Runs, ResumeOnAnotherWorldSizeReshardsTheRestOfTheEpoch) {
  TempDir d;
  // 2 ranks x 20 = 40 per step, 15 steps per epoch: stop mid-epoch, then go on with 1 rank.
  auto two = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                    " --max-steps 13" + dirs(d, "a"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto one = test_util::run_command(binary() + kCommon + " --max-steps 40 --resume auto" + dirs(d, "a"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("written by 2 ranks, this run has 1: the remaining 80 samples of epoch 1 "
                            "are re-sharded"), std::string::npos) << one.output;
  auto m = model::make_resnet("resnet14");
  auto loaded = trainer::load_checkpoint(d / "a/last.pt", *m, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(loaded.state.step, 40);
  EXPECT_EQ(loaded.state.world_size, 1);
}

// With the global batch kept (2 ranks x 10 with SyncBatchNorm, then 1 rank x 20), a resume on
// another world size computes the same steps as the run never stopped: the same samples, the
// same augmentation, the same statistics (fp64, so that only summation order differs).
TEST(Runs, ResumeOnAnotherWorldSizeKeepingTheGlobalBatchEqualsTheUninterruptedRun) {
  TempDir d;
  const std::string fp64 = kCommon + " --precision fp64";
  auto whole = test_util::run_command(binary() + fp64 + " --max-steps 40" + dirs(d, "a"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  auto two = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + fp64 +
                                    " --batch-size 10 --max-steps 13" + dirs(d, "b"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto one = test_util::run_command(binary() + fp64 + " --max-steps 40 --resume auto" + dirs(d, "b"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto ma = model::make_resnet("resnet14"), mb = model::make_resnet("resnet14");
  ma->to(torch::kFloat64);
  mb->to(torch::kFloat64);
  trainer::load_checkpoint(d / "a/last.pt", *ma, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(trainer::load_checkpoint(d / "b/last.pt", *mb, nullptr, trainer::OptimizerKind::Adam).state.step, 40);
  auto sa = trainer::state_dict(*ma), sb = trainer::state_dict(*mb);
  for (const auto& kv : sa) {
    const auto& a = kv.value();
    const auto& b = sb.at(kv.key());
    if (!a.is_floating_point()) {
      EXPECT_TRUE(torch::equal(a, b)) << kv.key();
      continue;
    }
    const double err = ((a - b).norm() / a.norm().clamp_min(1e-300)).item<double>();
    EXPECT_LE(err, 1e-8) << kv.key();
  }
}

// The same through --global-batch-size, the one flag an elastic restart repeats whatever the
// hosts: 2 ranks take 10 each, 1 rank 20; the checkpoint records G and the resume says it is
// kept. A world that does not divide G is refused naming those that would.
TEST(Runs, GlobalBatchSizeKeepsTheStepsAcrossWorldSizes) {
  TempDir d;
  const std::string fp64 = std::string(kCommon).replace(kCommon.find(" --batch-size 20"), 16, "") +
                           " --precision fp64 --global-batch-size 20";
  auto whole = test_util::run_command(binary() + fp64 + " --max-steps 40" + dirs(d, "a"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_NE(whole.output.find("batch 20 per rank x 1 ranks = 20 global"), std::string::npos) << whole.output;
  auto two = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + fp64 + " --max-steps 13" +
                                    dirs(d, "b"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("batch 10 per rank x 2 ranks = 20 global"), std::string::npos) << two.output;
  auto m = model::make_resnet("resnet14");
  m->to(torch::kFloat64);
  EXPECT_EQ(trainer::load_checkpoint(d / "b/last.pt", *m, nullptr, trainer::OptimizerKind::Adam).state.global_batch, 20);
  auto one = test_util::run_command(binary() + fp64 + " --max-steps 40 --resume auto" + dirs(d, "b"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("the global batch of 20 images per step is kept (2 rank(s) wrote"), std::string::npos)
      << one.output;
  auto ma = model::make_resnet("resnet14"), mb = model::make_resnet("resnet14");
  ma->to(torch::kFloat64);
  mb->to(torch::kFloat64);
  trainer::load_checkpoint(d / "a/last.pt", *ma, nullptr, trainer::OptimizerKind::Adam);
  trainer::load_checkpoint(d / "b/last.pt", *mb, nullptr, trainer::OptimizerKind::Adam);
  auto sa = trainer::state_dict(*ma), sb = trainer::state_dict(*mb);
  for (const auto& kv : sa) {
    const auto& a = kv.value();
    const auto& b = sb.at(kv.key());
    if (!a.is_floating_point()) {
      EXPECT_TRUE(torch::equal(a, b)) << kv.key();
      continue;
    }
    EXPECT_LE(((a - b).norm() / a.norm().clamp_min(1e-300)).item<double>(), 1e-9) << kv.key();
  }
  // Another global batch on resume: allowed, with a warning that says how to keep it.
  auto changed = test_util::run_command(binary() + std::string(kCommon) + " --precision fp64 --batch-size 40 "
                                        "--max-steps 42 --resume auto" + dirs(d, "b"));
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(changed.output.find("the global batch changes from 20 images per step"), std::string::npos)
      << changed.output;
  auto three = test_util::run_command("DT_FAULT_INJECT= " + mpirun(3) + binary() + fp64 + dirs(d, "c"));
  EXPECT_EQ(three.exit_code, 2) << three.output;
  EXPECT_NE(three.output.find("--global-batch-size 20 does not split evenly over 3 ranks; world sizes "
                              "that would work: 1, 2, 4, 5, 10 or 20"), std::string::npos) << three.output;
}

TEST(Runs, ResumeOnMoreRanksTrainsTheRemainingEpochs) {
  TempDir d;
  // 1 rank x 20: 30 steps per epoch; stop at step 45 (mid-epoch 2) and go on with 2 ranks x 20
  // (15 steps per epoch): the rest of epoch 2 (300 samples: 7 steps) and all of epoch 3 (15).
  auto one = test_util::run_command(binary() + kCommon + " --max-steps 45" + dirs(d, "a"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                    " --resume auto" + dirs(d, "a"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto m = model::make_resnet("resnet14");
  auto loaded = trainer::load_checkpoint(d / "a/last.pt", *m, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(loaded.state.step, 45 + 7 + 15) << two.output;
  EXPECT_EQ(loaded.state.epoch, 3);
}

TEST(Runs, StalledRankTripsTheCommTimeout) {
  TempDir d;
  test_util::CommandResult r;
  const double took = seconds_of([&] {
    r = test_util::run_command("DT_FAULT_INJECT=rank=1,step=3,action=sleep:60 " + mpirun(2) +
                               binary() + kCommon + " --max-steps 20 --comm-timeout 3" + dirs(d, "a"));
  });
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(took, 3 + 10 + 5.0) << "start-up (~5 s) + timeout + 10 s";
  EXPECT_NE(r.output.find("did not complete within 3"), std::string::npos) << r.output;
}

TEST(Runs, DifferentLrOnOneRankIsRefusedNamingIt) {
  TempDir d;
  auto r = test_util::run_command(
      test_util::mpirun() + " --allow-run-as-root --oversubscribe -np 1 " + binary() + kCommon +
      " --lr 0.001" + dirs(d, "a") + " : -np 1 " + binary() + kCommon + " --lr 0.002" + dirs(d, "a"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("dist_train: error: the resolved configuration (flags, $CIFAR10_DIR, "
                          "device, data) differs between ranks: rank 1 has 'lr = 0.002', rank 0 has "
                          "'lr = 0.001'"),
            std::string::npos)
      << r.output;
  // Said once (every rank found it), and the job ends without MPI_Abort.
  EXPECT_EQ(r.output.find("differs between ranks"), r.output.rfind("differs between ranks"))
      << r.output;
  EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
}

TEST(Runs, NonFiniteLossStopsOrIsSkipped) {
  TempDir d;
  auto stop = test_util::run_command("DT_FAULT_INJECT=rank=0,step=7,action=nan " + binary() +
                                     kCommon + " --max-steps 20" + dirs(d, "a"));
  EXPECT_NE(stop.exit_code, 0) << stop.output;
  EXPECT_NE(stop.output.find("at step 8"), std::string::npos) << stop.output;
  auto skip = test_util::run_command("DT_FAULT_INJECT=rank=0,step=7,action=nan " + binary() +
                                     kCommon + " --max-steps 20 --skip-nonfinite" + dirs(d, "b"));
  EXPECT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_NE(skip.output.find("update skipped (1 so far)"), std::string::npos) << skip.output;
  // Every checkpoint is a loss check: with losses read only every 100 steps, the NaN of step 8
  // must still stop the run before the step-10 checkpoint replaces the good one of step 5.
  auto kept = test_util::run_command("DT_FAULT_INJECT=rank=0,step=7,action=nan " + binary() + kCommon +
                                     " --max-steps 20 --log-every 100 --checkpoint-every-steps 5" + dirs(d, "c"));
  EXPECT_NE(kept.exit_code, 0) << kept.output;
  EXPECT_NE(kept.output.find("at step 8"), std::string::npos) << kept.output;
  auto net = model::make_resnet("resnet14");
  const auto loaded = trainer::load_checkpoint(d / "c/last.pt", *net, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(loaded.state.step, 5);
  for (const auto& p : net->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(Runs, BadCheckpointGivesExitCode2) {
  TempDir d;
  std::ofstream(d / "bad.pt") << "not a checkpoint";
  auto r = test_util::run_command(binary() + kCommon + " --resume " + (d / "bad.pt") + dirs(d, "a"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("dist_train: error: "), std::string::npos) << r.output;
  auto missing = test_util::run_command(binary() + kCommon + " --resume " + (d / "none.pt") + dirs(d, "a"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
}

// A full disk under an output file (here /dev/full behind the file's name): exit 2 with the file
// and the system's reason as the last line, not a run that reports success with its logs empty.
TEST(Runs, AnOutputFileThatCannotBeWrittenEndsTheRunWithExitCode2) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  const std::string quick = " --synthetic 200 --batch-size 20 --epochs 1 --threads 1 --device cpu";
  for (const std::string file : {"metrics.jsonl", "summary.json", "trace.json"}) {
    TempDir d;
    std::filesystem::create_directories(d / "a");
    std::filesystem::create_symlink("/dev/full", d / ("a/" + file));
    auto r = test_util::run_command(binary() + quick + dirs(d, "a") +
                                    (file == "trace.json" ? " --trace " + (d / "a/trace.json") : ""));
    EXPECT_EQ(r.exit_code, 2) << file << "\n" << r.output;
    const auto last_line = r.output.substr(r.output.rfind('\n', r.output.size() - 2) + 1);
    EXPECT_EQ(last_line.rfind("dist_train: error: ", 0), 0u) << last_line;
    EXPECT_NE(last_line.find(file + ": cannot write: No space left on device"), std::string::npos)
        << last_line;
  }
}

// Two nodes with different copies under the same --data path (here: one whose data_batch_2.bin
// is a second data_batch_1.bin): refused before training, naming the rank and both fingerprints.
TEST(Runs, RanksWithDifferentDataUnderTheSamePathAreRefused) {
  DT_REQUIRE_CIFAR();
  TempDir d;
  const std::string cifar = test_util::cifar_dir();
  for (const char* node : {"n0", "n1"}) {
    std::filesystem::create_directories(d / (std::string(node) + "/data"));
    for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
      const std::string source =
          std::string(node) == "n1" && std::string(f) == "data_batch_2.bin" ? "data_batch_1.bin" : f;
      std::filesystem::create_symlink(cifar + "/" + source, d / (std::string(node) + "/data/" + f));
    }
  }
  const std::string rank = binary() + " --data data --threads 1 --device cpu --max-steps 1" + dirs(d, "out");
  auto r = test_util::run_command(test_util::mpirun() + " --allow-run-as-root --oversubscribe -np 1 --wdir " +
                                  (d / "n0") + " " + rank + " : -np 1 --wdir " + (d / "n1") + " " + rank);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("differs between ranks: rank 1 has 'training set = 50000 images, fingerprint "),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 0 has 'training set = 50000 images, fingerprint "), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(d / "out/last.pt"));
}

// A requeued job whose checkpoint already holds every epoch (or --max-steps) says so, exits 0 and
// leaves the files alone; a run that never evaluated reports no accuracy (null), not 0%.
TEST(Runs, ResumingAFinishedRunTrainsNothingAndKeepsItsFiles) {
  TempDir d;
  const std::string run = binary() + " --synthetic 200 --batch-size 20 --epochs 1 --threads 1"
                          " --device cpu --eval-every 0" + dirs(d, "a");
  auto first = test_util::run_command(run);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string summary = file_bytes(d / "a/summary.json"), checkpoint = file_bytes(d / "a/last.pt");
  EXPECT_NE(summary.find("\"final_test_accuracy\": null, \"best_test_accuracy\": null"), std::string::npos)
      << summary;
  for (const std::string more : {"", " --epochs 3 --max-steps 10"}) {
    auto again = test_util::run_command(run + more + " --resume auto");
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("nothing to train: " + (d / "a/last.pt") + " has 1 epochs and 10 steps done"),
              std::string::npos) << again.output;
    EXPECT_EQ(file_bytes(d / "a/summary.json"), summary);
    EXPECT_EQ(file_bytes(d / "a/last.pt"), checkpoint);
  }
}

TEST(Runs, WriterKilledMidCheckpointLeavesThePreviousOneLoadable) {
  TempDir d;
  auto net = model::make_resnet("resnet110");  // ~7 MB: the write takes a while
  trainer::TrainingState st;
  st.model_name = "resnet110";
  trainer::save_checkpoint(d / "last.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  for (int delay_ms : {1, 5, 20, 60}) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) trainer::save_checkpoint(d / "last.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
    }
    usleep(useconds_t(delay_ms) * 1000);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    auto probe = model::make_resnet("resnet110");
    EXPECT_NO_THROW(trainer::load_checkpoint(d / "last.pt", *probe, nullptr, trainer::OptimizerKind::Adam)) << delay_ms;
  }
}

TEST(Runs, TraceHasEveryRankAndBucketsStartBeforeBackwardEnds) {
  DT_REQUIRE_PYTHON();
  TempDir d;
  auto r = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                  " --max-steps 8 --bucket-mb 0.05 --trace " + (d / "trace.json") +
                                  dirs(d, "a"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ofstream(d / "check.py") <<
      "import json, sys\n"
      "ev = [e for e in json.load(open(sys.argv[1]))['traceEvents'] if e['ph'] == 'X']\n"
      "ranks = sorted({e['pid'] for e in ev})\n"
      "assert ranks == [0, 1], ranks\n"
      "names = {e['name'] for e in ev}\n"
      "for n in ['data', 'forward', 'backward', 'optimizer', 'all_gather', 'all_reduce']:\n"
      "    assert n in names, (n, names)\n"
      "checked = late = 0\n"
      "for r in ranks:\n"
      "    for b in [e for e in ev if e['pid'] == r and e['name'] == 'backward']:\n"
      "        end = b['ts'] + b['dur']\n"
      "        bk = sorted((e for e in ev if e['pid'] == r and e['cat'] == 'buckets'\n"
      "                     and e['args']['step'] == b['args']['step']), key=lambda e: e['ts'])\n"
      "        assert len(bk) >= 3, len(bk)\n"
      "        checked += 1\n"
      "        late += sum(1 for e in bk[:-1] if e['ts'] >= end)\n"
      "print('steps', checked, 'late buckets', late)\n"
      "sys.exit(1 if late or checked < 16 else 0)\n";
  auto check = test_util::run_command(test_util::python() + " " + (d / "check.py") + " " + (d / "trace.json"));
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(Runs, ReplicaCheckCatchesACorruptedParameterNamingRankAndTensor) {
  TempDir d;
  auto r = test_util::run_command("DT_FAULT_INJECT=rank=1,step=7,action=corrupt:layer2.0.conv1.weight " +
                                  mpirun(2) + binary() + kCommon + " --max-steps 30 --verify-every 5" +
                                  dirs(d, "a"));
  EXPECT_EQ(r.exit_code, 3) << "divergence has its own exit code\n" << r.output;
  EXPECT_NE(r.output.find("replicas diverged at step 10: rank 1 differs from rank 0 in layer2.0.conv1.weight"),
            std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(d / "a/divergence_step10_rank0.pt"));
  EXPECT_TRUE(std::filesystem::exists(d / "a/divergence_step10_rank1.pt"));
}

TEST(Runs, CleanRunOf3RanksNeverTripsTheReplicaCheck) {
  TempDir d;
  auto r = test_util::run_command("DT_FAULT_INJECT= " + mpirun(3) + binary() + kCommon +
                                  " --max-steps 50 --verify-every 5 --batch-size 10" + dirs(d, "a"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("replica consistency verified"), std::string::npos) << r.output;
  // Per-rank BatchNorm statistics differ by design; parameters and optimizer state still agree.
  auto plain = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                      " --max-steps 20 --verify-every 5 --no-sync-bn" + dirs(d, "b"));
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  // bf16 autocast: the all-reduced gradients and the weights stay fp32, so replicas stay equal.
  auto bf16 = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                     " --max-steps 20 --verify-every 5 --precision bf16" + dirs(d, "c"));
  EXPECT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_NE(bf16.output.find("replica consistency verified"), std::string::npos) << bf16.output;
}

TEST(Runs, DeterministicRunsGiveBitIdenticalCheckpoints) {
  TempDir d;
  for (const char* name : {"a", "b"}) {
    auto r = test_util::run_command("DT_FAULT_INJECT= " + mpirun(2) + binary() + kCommon +
                                    " --max-steps 12 --deterministic" + dirs(d, name));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Model, optimizer state and position: every bit equal (the files differ only in the config
  // text, which names their folders).
  auto ma = model::make_resnet("resnet14"), mb = model::make_resnet("resnet14");
  torch::optim::Adam oa(ma->parameters()), ob(mb->parameters());
  auto la = trainer::load_checkpoint(d / "a/last.pt", *ma, &oa, trainer::OptimizerKind::Adam);
  auto lb = trainer::load_checkpoint(d / "b/last.pt", *mb, &ob, trainer::OptimizerKind::Adam);
  EXPECT_EQ(la.state.step, lb.state.step);
  auto sa = trainer::state_dict(*ma), sb = trainer::state_dict(*mb);
  for (const auto& kv : sa) EXPECT_TRUE(torch::equal(kv.value(), sb.at(kv.key()))) << kv.key();
  auto pa = ma->parameters(), pb = mb->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    auto& xa = static_cast<torch::optim::AdamParamState&>(*oa.state().at(pa[i].unsafeGetTensorImpl()));
    auto& xb = static_cast<torch::optim::AdamParamState&>(*ob.state().at(pb[i].unsafeGetTensorImpl()));
    EXPECT_TRUE(torch::equal(xa.exp_avg(), xb.exp_avg()));
    EXPECT_TRUE(torch::equal(xa.exp_avg_sq(), xb.exp_avg_sq()));
  }
}

namespace {
// test_loss of each evaluation in a run's metrics.jsonl.
std::vector<double> test_losses(const std::string& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("\"test_loss\":");
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + 12)));
  }
  return out;
}

// Runs `args` on `np` ranks with --eval rank0 and with --eval distributed: both score the same
// model on the same images, so their test losses (one per evaluated epoch) agree but for the
// order of the sums. Returns the two runs' logs.
std::vector<std::string> expect_both_eval_modes_score_one_model(const TempDir& d, int np,
                                                                const std::string& args,
                                                                size_t evaluations) {
  std::vector<std::string> outputs;
  for (const char* mode : {"rank0", "distributed"}) {
    auto r = test_util::run_command("DT_FAULT_INJECT= " + mpirun(np) + binary() + args +
                                    " --eval " + mode + dirs(d, mode));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    outputs.push_back(r.output);
  }
  const auto a = test_losses(d / "rank0/metrics.jsonl"), b = test_losses(d / "distributed/metrics.jsonl");
  EXPECT_EQ(a.size(), evaluations);
  EXPECT_EQ(b.size(), evaluations);
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_NEAR(b[i], a[i], 1e-5 * a[i]) << "evaluation " << i + 1;
  }
  return outputs;
}
}  // namespace

// Per-rank BatchNorm lets the ranks' running statistics drift apart; a distributed evaluation
// must still score one model (rank 0's, the checkpointed one), as --eval rank0 does.
TEST(Runs, DistributedEvalWithPerRankBatchNormScoresRank0sModel) {
  TempDir d;
  const std::string args = " --synthetic 600 --batch-size 20 --epochs 2 --threads 1 --device cpu"
                           " --no-sync-bn --eval-every 1 --seed 3 --augment standard";
  expect_both_eval_modes_score_one_model(d, 2, args, 2);
}

// --sync-bn-group 2 at 4 ranks: the resolved group is in the compared configuration, the replica
// check leaves the groups' differing BatchNorm statistics alone (parameters still agree), and a
// distributed evaluation scores rank 0's model, as --eval rank0 does; a group that does not
// divide the world is one line and exit code 2.
TEST(Runs, SyncBatchNormInGroupsOfTwoAtFourRanks) {
  TempDir d;
  const std::string args = " --synthetic 480 --batch-size 10 --epochs 1 --threads 1 --device cpu"
                           " --sync-bn --sync-bn-group 2 --verify-every 4 --eval-every 1 --seed 3";
  const auto outputs = expect_both_eval_modes_score_one_model(d, 4, args, 1);
  for (const auto& output : outputs) {
    EXPECT_NE(output.find("sync_bn_group = 2\n"), std::string::npos) << output;
    EXPECT_NE(output.find("replica consistency verified"), std::string::npos) << output;
  }
  auto bad = test_util::run_command(mpirun(4) + binary() + " --synthetic 480 --device cpu"
                                    " --sync-bn-group 3" + dirs(d, "bad"));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--sync-bn-group 3 does not divide the world of 4 ranks"), std::string::npos)
      << bad.output;
}

// The start-up line says what an epoch does not train on, leftover micro-batches included.
TEST(Runs, TailLineCountsSamplesAnEpochLeavesOut) {
  TempDir d;
  auto r = test_util::run_command(binary() + " --synthetic 200 --batch-size 20 --accumulate 3"
                                  " --max-steps 1 --threads 1 --device cpu --eval-every 0" + dirs(d, "a"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 steps per epoch; tail: 20 of 200 samples not trained per epoch "
                          "(drop_last, and micro-batches short of an accumulation)"),
            std::string::npos) << r.output;
}

// --eval-only scores a checkpoint exactly as the run that wrote it did, needs only its weights
// (another --optimizer is fine), trains and writes nothing, and prints one JSON line on stdout.
TEST(Runs, EvalOnlyScoresTheCheckpointAsTheRunThatWroteIt) {
  TempDir d;
  const std::string data = " --synthetic 600 --seed 11 --threads 1 --device cpu";
  auto train = test_util::run_command(binary() + data + " --batch-size 20 --epochs 1 --eval-every 1"
                                      " --augment standard" + dirs(d, "a"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  std::ifstream metrics(d / "a/metrics.jsonl");
  std::string epoch_line;
  std::getline(metrics, epoch_line);
  const double loss = json_number(epoch_line, "test_loss"), accuracy = json_number(epoch_line, "test_accuracy");
  ASSERT_TRUE(std::isfinite(loss) && std::isfinite(accuracy)) << epoch_line;
  const std::string checkpoint = d / "a/last.pt", before = file_bytes(checkpoint);

  std::map<std::string, double> losses;
  for (const std::string tta : {"none", "flip"}) {
    auto r = test_util::run_command("(" + binary() + data + " --optimizer sgd --eval-only --resume " +
                                    checkpoint + " --eval-tta " + tta + dirs(d, "e") + " 2>/dev/null)");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(r.output.rfind("{\"checkpoint\": \"" + checkpoint + "\"", 0), 0u) << r.output;
    EXPECT_NE(r.output.find("\"epochs_trained\": 1, \"eval_tta\": \"" + tta + "\""), std::string::npos) << r.output;
    EXPECT_EQ(json_number(r.output, "images"), 1000) << r.output;  // the synthetic test set
    losses[tta] = json_number(r.output, "test_loss");
    if (tta == "none") {
      EXPECT_NEAR(losses[tta], loss, 1e-7 * loss) << r.output;
      EXPECT_EQ(json_number(r.output, "test_accuracy"), accuracy) << r.output;
    }
  }
  EXPECT_GT(std::abs(losses["flip"] - losses["none"]), 1e-4) << "the mirror views were scored";
  // Two ranks, each scoring half of the test set: the same figures, printed once.
  auto two = test_util::run_command("(DT_FAULT_INJECT= " + mpirun(2) + binary() + data +
                                    " --eval-only --eval distributed --resume " + checkpoint +
                                    dirs(d, "e") + " 2>/dev/null)");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_EQ(std::count(two.output.begin(), two.output.end(), '\n'), 1) << two.output;
  EXPECT_EQ(json_number(two.output, "images"), 1000) << two.output;
  // Two fp32 shards of 500 sum their losses in another order than one batch of 1000 (and oneDNN
  // may pick other kernels for the other batch size): equal to fp32's rounding, not to the bit.
  EXPECT_NEAR(json_number(two.output, "test_loss"), loss, 1e-6 * loss) << two.output;
  EXPECT_EQ(json_number(two.output, "test_accuracy"), accuracy) << two.output;
  EXPECT_EQ(file_bytes(checkpoint), before) << "--eval-only must not write the checkpoint";
  EXPECT_FALSE(std::filesystem::exists(d / "e")) << "--eval-only creates no output folder";
  // Another model's checkpoint: one line, exit code 2.
  auto other = test_util::run_command(binary() + data + " --model resnet20 --eval-only --resume " +
                                      checkpoint + dirs(d, "e"));
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_EQ(std::count(other.output.begin(), other.output.end(), '\n'), 1) << other.output;
  EXPECT_NE(other.output.find(checkpoint), std::string::npos) << other.output;
}

// A state dict saved by PyTorch (int64 num_batches_tracked, which the model here holds as a
// float after Module::to) initialises a run and is evaluated, at every precision.
TEST(Runs, APyTorchSavedStateDictInitialisesARunAndIsEvaluated) {
  DT_REQUIRE_PYTHON();
  TempDir d;
  auto saved = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                      "/tests/python/reference_models.py save resnet20 " + (d / "py.pt") + " 3");
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  const std::string run = binary() + " --model resnet20 --synthetic 200 --batch-size 20 --threads 1"
                          " --device cpu --resume " + (d / "py.pt") + dirs(d, "a");
  for (const std::string extra : {" --max-steps 2", " --max-steps 2 --precision fp64", " --eval-only"}) {
    auto r = test_util::run_command(run + extra);
    EXPECT_EQ(r.exit_code, 0) << extra << "\n" << r.output;
    EXPECT_NE(r.output.find(extra == " --eval-only" ? "evaluated " + (d / "py.pt") + " (weights only"
                                                     : "initialised from the weights in " + (d / "py.pt")),
              std::string::npos) << r.output;
  }
}

// The evaluation PyTorch itself gives the same checkpoint on the real test set, with and
// without the mirror views (launch/bench/eval_checkpoint.py, fp32).
TEST(Runs, EvalOnlyAgreesWithPyTorchOnTheRealTestSet) {
  DT_REQUIRE_PYTHON();
  DT_REQUIRE_CIFAR();
  TempDir d;
  const std::string common = " --data " + test_util::cifar_dir() + " --threads 1 --device cpu";
  auto train = test_util::run_command(binary() + common + " --max-steps 40 --eval-every 0" + dirs(d, "a"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string checkpoint = d / "a/last.pt";
  // --eval-only reads the test split alone: a folder with nothing else will do, named by --data
  // or by $CIFAR10_DIR.
  std::filesystem::create_directory(d / "test_only");
  std::filesystem::create_symlink(test_util::cifar_dir() + "/test_batch.bin", d / "test_only/test_batch.bin");
  for (const std::string tta : {"none", "flip"}) {
    const std::string data = tta == "none" ? binary() + " --data " + (d / "test_only")
                                           : "CIFAR10_DIR=" + (d / "test_only") + " " + binary();
    expect_python_agrees(data + " --threads 1 --device cpu --eval-only --resume " + checkpoint +
                             " --eval-tta " + tta + dirs(d, "e"),
                         checkpoint, "--tta " + tta, 0.002);
  }
}

// The checkpoint says how to feed it, and a Python user who follows it alone (torch.load, the
// seed-named module, the stored "preprocess" entry) scores what dist_train --eval-only scores.
// For the seed recipe that preprocessing is ToTensor() alone (mean 0, std 1); for standard the
// CIFAR-10 mean and std.
TEST(Runs, PythonFeedsTheCheckpointAsItsContractSaysAndScoresTheSame) {
  DT_REQUIRE_PYTHON();
  DT_REQUIRE_CIFAR();
  TempDir d;
  const std::string seed = std::to_string(std::random_device{}() % 1000);  // fresh weights
  const std::string common = " --data " + test_util::cifar_dir() + " --threads 1 --device cpu --seed " + seed;
  for (const std::string augment : {"seed", "standard"}) {
    auto train = test_util::run_command(binary() + common + " --augment " + augment +
                                        " --max-steps 60 --eval-every 0" + dirs(d, augment));
    ASSERT_EQ(train.exit_code, 0) << train.output;
    const std::string checkpoint = d / (augment + "/last.pt");
    // The contract, read with plain torch.load (weights_only) and no dist_train code.
    auto contract = test_util::run_command(
        test_util::python() + " -c 'import json, sys, torch; c = torch.load(sys.argv[1])[\"preprocess\"]; "
        "print(json.dumps([c[\"scale\"] * 255, *c[\"mean\"], *c[\"std\"], c[\"layout\"]]))' " + checkpoint);
    ASSERT_EQ(contract.exit_code, 0) << contract.output;
    EXPECT_EQ(contract.output, augment == "seed" ? "[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, \"NCHW RGB\"]\n"
                                                 : "[1.0, 0.4914, 0.4822, 0.4465, 0.247, 0.2435, 0.2616, \"NCHW RGB\"]\n");
    // The wrong normalisation on either side costs points, not the 0.1 allowed here.
    expect_python_agrees(binary() + common + " --eval-only --resume " + checkpoint + dirs(d, "e"),
                         checkpoint, "", 0.001);
  }
}

// What the seed's own loop saves, torch.save(model.state_dict()) (an OrderedDict with _metadata,
// no "model" around it, no contract), is read as it is: scored by --eval-only with the seed's
// preprocessing (--normalize none) as Python scores it, and taken up by --resume.
TEST(Runs, ATorchSaveStateDictIsScoredAsPythonScoresIt) {
  DT_REQUIRE_PYTHON();
  DT_REQUIRE_CIFAR();
  TempDir d;
  const std::string file = d / "seed_loop.pt";
  auto saved = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                      "/tests/python/reference_models.py train_seed resnet14 " +
                                      test_util::cifar_dir() + " " + file + " 120 " +
                                      std::to_string(std::random_device{}() % 1000));
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  expect_python_agrees(binary() + " --data " + test_util::cifar_dir() + " --threads 1 --device cpu "
                       "--eval-only --normalize none --resume " + file + dirs(d, "e"),
                       file, "--normalize none", 0.001);
  // Without the flag, the file is fed as a fresh run with the same flags would be, and the log
  // says so (on the synthetic test set: only the log line is checked): the seed recipe's
  // ToTensor(), or --augment standard's CIFAR-10 mean and std.
  for (const std::string augment : {"seed", "standard"}) {
    auto assumed = test_util::run_command(binary() + " --synthetic 200 --threads 1 --device cpu "
                                          "--eval-only --augment " + augment + " --resume " + file + dirs(d, "e"));
    ASSERT_EQ(assumed.exit_code, 0) << assumed.output;
    EXPECT_NE(assumed.output.find("has no 'preprocess' entry: evaluating with --normalize " +
                                  std::string(augment == "seed" ? "none" : "cifar") +
                                  " (a plain PyTorch state dict carries no recipe"),
              std::string::npos) << assumed.output;
  }
  auto resumed = test_util::run_command(binary() + " --synthetic 200 --batch-size 20 --threads 1 "
                                        "--device cpu --max-steps 2 --resume " + file + dirs(d, "r"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("initialised from the weights in " + file), std::string::npos) << resumed.output;
}

// The seed script's own file (../shared/bench/peer_seed.py --save: torch.save(model.state_dict())
// after its own training loop), scored by a plain `dist_train --eval-only --resume FILE`: no
// --normalize, so the file is fed as the seed recipe feeds it, and the accuracy is the one the
// seed script printed for it, to 0.05 points.
TEST(Runs, TheSeedScriptsOwnStateDictScoresAsTheSeedScriptSays) {
  DT_REQUIRE_PYTHON();
  DT_REQUIRE_CIFAR();
  const char* env = std::getenv("DT_PEER_SEED");
  const std::string peer = env ? env : test_util::source_dir() + "/../shared/bench/peer_seed.py";
  if (!std::filesystem::exists(peer)) GTEST_SKIP() << peer << " not found: the seed script is not beside this clone";
  TempDir d;
  const std::string file = d / "seed.pt";
  auto seed = test_util::run_command("OMP_NUM_THREADS=1 " + test_util::python() + " " + peer + " --data " +
                                     test_util::cifar_dir() + " --steps 150 --eval --save " + file + " --seed " +
                                     std::to_string(std::random_device{}() % 1000) + " 2>/dev/null");
  ASSERT_EQ(seed.exit_code, 0) << seed.output;
  const double python_accuracy = json_number(seed.output, "test_accuracy");
  ASSERT_GT(python_accuracy, 0.15) << "trained past chance: " << seed.output;
  auto ours = test_util::run_command(binary() + " --data " + test_util::cifar_dir() +
                                     " --threads 1 --device cpu --eval-only --resume " + file + dirs(d, "e"));
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  EXPECT_NE(ours.output.find(file + " has no 'preprocess' entry: evaluating with --normalize none (a plain "
                             "PyTorch state dict"), std::string::npos) << ours.output;
  EXPECT_NEAR(json_number(ours.output, "test_accuracy"), python_accuracy, 0.0005)
      << ours.output << "\n" << seed.output;
}

// A checkpoint whose contract an explicit --normalize contradicts is refused in one line (exit
// 2); the flag that agrees is accepted; a training resume with another normalisation lists it.
TEST(Runs, AContractContradictedByNormalizeIsRefused) {
  TempDir d;
  const std::string run = binary() + " --synthetic 200 --batch-size 20 --threads 1 --device cpu";
  auto train = test_util::run_command(run + " --max-steps 2 --eval-every 0" + dirs(d, "a"));  // seed: none
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string checkpoint = d / "a/last.pt";
  auto refused = test_util::run_command(run + " --eval-only --normalize cifar --resume " + checkpoint + dirs(d, "e"));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  EXPECT_NE(refused.output.find("trained with --normalize none (its 'preprocess' entry): --normalize "
                                "cifar contradicts it"), std::string::npos) << refused.output;
  auto agreed = test_util::run_command(run + " --eval-only --normalize none --resume " + checkpoint + dirs(d, "e"));
  EXPECT_EQ(agreed.exit_code, 0) << agreed.output;
  auto resumed = test_util::run_command(run + " --max-steps 4 --eval-every 0 --normalize cifar --resume auto" +
                                        dirs(d, "a"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("changed since " + checkpoint + " was written: normalize: none -> cifar"),
            std::string::npos) << resumed.output;
}
