// launch/app/cli: strict validation in process, and the binary's one-line errors with exit code 2.
#include <gtest/gtest.h>
#include <filesystem>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include "launch/app/cli.h"
#include "trainer/config/config_fields.h"
#include "tests/test_util.h"
#include "trainer/config/errors.h"

using namespace dt;

namespace {
launch::CliResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "dist_train");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return launch::parse_cli(int(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const trainer::ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

// Changes each row's field of config_fields.h away from its default, one at a time, and records
// what the resolved configuration then says.
class RowProbe {
 public:
  struct Row {
    std::string flag, key;
    std::set<std::string> changed_keys;  // keys of the resolved lines that changed
    bool same_line_count = true;
  };
  template <class T>
  void value(const std::string&, const std::string& flag, const std::string& key,
             T trainer::Config::*field, const std::string&) {
    trainer::Config c;
    c.*field = other(c.*field);
    record(flag, key, c);
  }
  void enable(const std::string& g, const std::string& flag, const std::string& key,
              bool trainer::Config::*field, const std::string& h) {
    value(g, flag, key, field, h);
  }
  void disable(const std::string& g, const std::string& flag, const std::string& key,
               bool trainer::Config::*field, const std::string& h) {
    value(g, flag, key, field, h);
  }
  template <class T>
  void setting(const std::string&, const std::string& flag, const std::string& key,
               T trainer::Config::*field, T v, const std::string&) {
    trainer::Config c;
    c.*field = v;
    record(flag, key, c);
  }
  std::vector<Row> rows;

 private:
  template <class T>
  static T other(const T& v) {
    if constexpr (std::is_same_v<T, std::string>) {
      return v + "x";
    } else if constexpr (std::is_same_v<T, bool>) {
      return !v;
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      auto w = v;
      w.push_back(1.5);
      return w;
    } else if constexpr (std::is_enum_v<T>) {
      for (const auto& [e, name] : EnumNames<T>::values) {
        if (e != v) return e;
      }
      return v;
    } else {
      return v + 3;
    }
  }
  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void record(const std::string& flag, const std::string& key, const trainer::Config& c) {
    const auto before = lines(trainer::to_string(trainer::Config{}));
    const auto after = lines(trainer::to_string(c));
    Row row{flag, key, {}, before.size() == after.size()};
    for (size_t i = 0; i < before.size() && i < after.size(); ++i) {
      if (before[i] != after[i]) row.changed_keys.insert(after[i].substr(0, after[i].find(" = ")));
    }
    rows.push_back(row);
  }
};

// The one table (trainer/config/config_fields.h) feeds both the flags and the resolved configuration
// that ranks compare and checkpoints store: every flag's field shows in it, under its own key and
// no other, and every flag is in --help.
TEST(Cli, EveryFlagIsInTheResolvedConfigurationAndTheHelp) {
  RowProbe probe;
  trainer::declare_config_fields(probe, "resnet14");
  ASSERT_GT(probe.rows.size(), 50u);
  const std::string help = parse({"--help"}).help_text;
  for (const auto& row : probe.rows) {
    SCOPED_TRACE("--" + row.flag);
    EXPECT_TRUE(row.same_line_count);
    // --synthetic also turns the data line into "data = synthetic".
    const std::set<std::string> expected =
        row.flag == "synthetic" ? std::set<std::string>{"data", "synthetic"}
                                : std::set<std::string>{row.key};
    EXPECT_EQ(row.changed_keys, expected);
    EXPECT_NE(help.find("--" + row.flag + " "), std::string::npos);
  }
}

TEST(Cli, TheResolvedConfigurationPrintsNumbersInTheirShortestForm) {
  const std::string text = trainer::to_string(parse({"--lr", "0.1", "--optimizer", "sgd",
                                                     "--momentum", "0.9"}).config);
  EXPECT_NE(text.find("\nmomentum = 0.9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nlr = 0.1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ncomm_timeout_s = 600\n"), std::string::npos) << text;
  EXPECT_EQ(parse({"--lr", trainer::shortest(0.1 + 0.2)}).config.lr, 0.1 + 0.2) << "reads back the same";
  EXPECT_EQ(trainer::shortest(0.0005), "0.0005");
  EXPECT_EQ(trainer::shortest(1e-10), "1e-10");
  EXPECT_EQ(trainer::shortest(1e6), "1000000");
  EXPECT_EQ(trainer::shortest(-2.5), "-2.5");
}

TEST(Cli, DefaultsAreTheSeedRecipe) {
  auto c = parse({}).config;
  EXPECT_EQ(c.model, "resnet14");
  EXPECT_EQ(c.optimizer, trainer::OptimizerKind::Adam);
  EXPECT_DOUBLE_EQ(c.lr, 1e-3);
  EXPECT_EQ(c.batch_size, 30);
  EXPECT_EQ(c.epochs, 10);
  EXPECT_EQ(c.augment, data::AugmentMode::Seed);
}

// The seed recipe feeds its network pixel / 255 (the seed's ToTensor()); the others the CIFAR-10
// mean and std. A training run prints the normalisation it resolved, not auto; --eval-only keeps
// auto until the checkpoint says (trainer/checkpoint/input_contract.h).
TEST(Cli, NormalizeFollowsTheRecipeUnlessGiven) {
  using data::Normalization;
  const std::vector<std::pair<std::vector<std::string>, Normalization>> cases = {
      {{}, Normalization::None},
      {{"--augment", "seed"}, Normalization::None},
      {{"--augment", "standard"}, Normalization::Cifar},
      {{"--augment", "none"}, Normalization::Cifar},
      {{"--normalize", "auto", "--augment", "standard"}, Normalization::Cifar},
      {{"--normalize", "cifar"}, Normalization::Cifar},
      {{"--augment", "standard", "--normalize", "none"}, Normalization::None},
      {{"--eval-only", "--resume", "x.pt"}, Normalization::Auto},
      {{"--eval-only", "--resume", "x.pt", "--normalize", "none"}, Normalization::None},
  };
  for (const auto& [args, expected] : cases) {
    const auto c = parse(args).config;
    EXPECT_EQ(c.normalize, expected) << ::testing::PrintToString(args);
    EXPECT_NE(trainer::to_string(c).find(std::string("\nnormalize = ") + name_of(expected) + "\n"),
              std::string::npos) << trainer::to_string(c);
  }
  EXPECT_EQ(error_of({"--normalize", "imagenet"}), "--normalize must be auto, cifar or none, got 'imagenet'");
}

TEST(Cli, ParsesValues) {
  auto c = parse({"--model", "resnet20", "--lr", "0.1", "--optimizer", "sgd", "--nesterov",
                  "--batch-size", "128", "--no-overlap", "--seed", "7", "--precision", "bf16",
                  "--no-cudnn-benchmark"}).config;
  EXPECT_EQ(c.model, "resnet20");
  EXPECT_DOUBLE_EQ(c.lr, 0.1);
  EXPECT_TRUE(c.nesterov);
  EXPECT_EQ(c.batch_size, 128);
  EXPECT_FALSE(c.overlap);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.precision, trainer::Precision::Bf16);
  EXPECT_FALSE(c.cudnn_benchmark);
  EXPECT_TRUE(parse({}).config.cudnn_benchmark);
  EXPECT_TRUE(parse({}).config.lr_milestones.empty());
  // A flag given twice: the last wins (a wrapper's defaults, then the user's own).
  EXPECT_DOUBLE_EQ(parse({"--lr", "0.1", "--lr", "0.2"}).config.lr, 0.2);
  // A switch given with "=true" is on; "=false" is refused (RejectsBadValuesWithOneLine).
  EXPECT_TRUE(parse({"--nesterov=true", "--optimizer", "sgd"}).config.nesterov);
  EXPECT_EQ(parse({"--lr-schedule", "step", "--epochs", "164", "--lr-milestones", "82,123.5"})
                .config.lr_milestones,
            (std::vector<double>{82, 123.5}));
}

TEST(Cli, RejectsBadValuesWithOneLine) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--batch-size", "0"}, "--batch-size"},   {{"--batch-size", "-3"}, "--batch-size"},
      {{"--lr", "0"}, "--lr"},                   {{"--lr", "-1"}, "--lr"},
      {{"--model", "resnet15"}, "unknown model"}, {{"--epochs", "0"}, "--epochs"},
      {{"--optimizer", "rmsprop"}, "--optimizer"}, {{"--device", "tpu"}, "--device"},
      {{"--lr", "fast"}, "lr"},                  {{"--no-such-flag"}, "no-such-flag"},
      {{"stray"}, "stray"},                      {{"--lr-schedule", "exp"}, "--lr-schedule"},
      {{"--nesterov"}, "--nesterov"},            {{"--accumulate", "0"}, "--accumulate"},
      {{"--precision", "fp16"}, "--precision must be fp32, bf16 or fp64"},
      {{"--lr-milestones", "5"}, "--lr-milestones needs --lr-schedule step"},
      {{"--cutout", "33"}, "--cutout must be in [0, 32]"},
      // Given, but this run would ignore them.
      {{"--momentum", "0.8"}, "--momentum applies with --optimizer sgd only"},
      {{"--lr-gamma", "0.5"}, "--lr-gamma applies with --lr-schedule step only"},
      {{"--lr-schedule", "step", "--lr-milestones", "5", "--lr-step-epochs", "3"},
       "--lr-step-epochs applies with --lr-schedule step without --lr-milestones only"},
      {{"--crop-padding", "2"}, "--crop-padding applies with --augment standard only"},
      {{"--augment", "none", "--pad-mode", "reflect"}, "--pad-mode applies with --augment standard"},
      {{"--keep", "3"}, "--keep applies with --checkpoint-every N only"},
      {{"--augment", "standard", "--crop-padding", "0", "--pad-mode", "reflect"},
       "--pad-mode applies with --augment standard and --crop-padding > 0 only"},
      {{"--eval-every", "0", "--eval-tta", "flip"}, "--eval-tta applies with --eval-every > 0 or --eval-only only"},
      {{"--cpu-conv", "winograd"}, "--cpu-conv must be auto or direct"},
      // Every choice is named by its flag when refused, at parse time.
      {{"--augment", "fancy"}, "--augment must be seed, standard or none, got 'fancy'"},
      {{"--augment", "standard", "--pad-mode", "wrap"}, "--pad-mode must be zero or reflect"},
      {{"--augment", "standard", "--crop-padding", "17"}, "--crop-padding must be in [0, 16]"},
      {{"--augment", "standard", "--crop-padding", "-1"}, "--crop-padding must be in [0, 16]"},
      {{"--eval", "all"}, "--eval must be rank0 or distributed"},
      {{"--eval-tta", "crops"}, "--eval-tta must be none or flip"},
      {{"--channels-last", "yes"}, "--channels-last must be auto, on or off"},
      {{"--sync-bn", "--no-sync-bn"}, "--sync-bn and --no-sync-bn exclude each other"},
      {{"--sync-bn-group", "0"}, "--sync-bn-group must be world, node or a number of ranks >= 1"},
      {{"--sync-bn-group", "rack"}, "--sync-bn-group must be world, node or a number"},
      {{"--sync-bn-group", "99999999999"}, "--sync-bn-group must be world, node or a number"},
      {{"--lr-schedule", "step", "--lr-milestones", "5,x"}, "--lr-milestones: 'x' is not a number"},
      {{"--lr-schedule", "step", "--lr-milestones", "5,"}, "--lr-milestones"},
      {{"--lr-schedule", "step", "--lr-milestones", "5,,6"}, "--lr-milestones"},
      {{"--lr-schedule", "step", "--lr-milestones", "6,5"}, "6,5 is not increasing"},
      {{"--lr-schedule", "step", "--lr-milestones", "5,10"}, "outside (--warmup-epochs, --epochs)"},
      {{"--lr-schedule", "step", "--warmup-epochs", "2", "--lr-milestones", "2,5"}, "outside"},
      {{"--cuda-graph", "--device", "cpu"}, "--cuda-graph needs a GPU, not --device cpu"},
      {{"--cuda-graph", "--accumulate", "2"}, "--cuda-graph and --accumulate 2 exclude each other"},
      {{"--cuda-graph", "--skip-nonfinite"}, "--cuda-graph and --skip-nonfinite exclude each other"},
      {{"--global-batch-size", "60", "--batch-size", "30"},
       "--batch-size and --global-batch-size exclude each other"},
      {{"--global-batch-size", "-60"}, "--global-batch-size must be in [0, 1048576], got -60"},
      {{"--global-batch-size", "60", "--accumulate", "7"},
       "--global-batch-size 60 is not a multiple of --accumulate 7"},
  };
  for (const auto& [args, needle] : cases) {
    auto msg = error_of(args);
    EXPECT_NE(msg.find(needle), std::string::npos) << args[0] << " -> '" << msg << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(Cli, MissingDataDirectoryIsAnError) {
  auto cli = parse({"--data", "/nonexistent/cifar"});
  EXPECT_THROW(launch::resolve_data_source(cli, 100), trainer::ConfigError);
}

TEST(Cli, HelpDocumentsEveryFlagWithItsDefault) {
  auto r = parse({"--help"});
  ASSERT_TRUE(r.help);
  for (const char* flag : {"--data", "--synthetic", "--model", "--epochs", "--batch-size",
                           "--optimizer", "--lr ", "--momentum", "--weight-decay", "--lr-schedule",
                           "--augment", "--device", "--seed", "--threads", "--max-steps",
                           "--log-dir", "--checkpoint-dir", "--bucket-mb", "--accumulate"}) {
    EXPECT_NE(r.help_text.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(r.help_text.find("(default: resnet14)"), std::string::npos);
  EXPECT_NE(r.help_text.find("(default: 0.001)"), std::string::npos);
}

// The binary itself: bad input -> exit code 2 and a one-line message.
TEST(CliBinary, BadInputExitsWithCode2AndOneLine) {
  test_util::TempDir dir;
  std::ofstream(dir / "data_batch_1.bin") << "short";
  std::filesystem::create_directories(dir / "dangling");
  std::filesystem::create_symlink("/nonexistent/last.pt", dir / "dangling/last.pt");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--batch-size 0", "--batch-size"},
      {"--lr -1", "--lr"},
      {"--model nope", "unknown model"},
      {"--data /nonexistent", "no such directory"},
      {"--data " + dir.path().string(), "data_batch_1.bin"},
      {"--device cuda --synthetic 100", "no CUDA GPU"},
      {"--synthetic 100 --batch-size 30 --accumulate 4", "--accumulate 4 is more than the 3 batches"},
      {"--synthetic 100 --global-batch-size 60 --batch-size 20", "--batch-size and --global-batch-size exclude each other"},
      {"--synthetic 100 --global-batch-size 60 --accumulate 8", "is not a multiple of --accumulate 8"},
      {"--synthetic 100 --comm-timeout 1e10", "--comm-timeout must be in [0.001, 1e6]"},
      {"--synthetic 100 --comm-timeout 0.0004", "--comm-timeout must be in [0.001, 1e6]"},
      {"--synthetic 100 --epochs 4611686018427387905", "--epochs must be in [1, 1000000]"},
      {"--synthetic 100000000000", "--synthetic must be in [0, 2000000]"},
      {"--synthetic 2000001", "--synthetic must be in [0, 2000000]"},
      {"--synthetic 100 --threads 4294967296", "--threads must be in [0, 4096], got 4294967296"},
      {"--synthetic 100 --threads 4097", "--threads must be in [0, 4096]"},
      // Switches take no value: cxxopts would read "=false" as the switch given, i.e. on.
      {"--synthetic 100 --epochs 10 --lr-schedule step --lr-step-epochs 2 --warmup-epochs 5",
       "--lr-step-epochs must be > --warmup-epochs"},
      {"--synthetic 100 --nesterov=false", "--nesterov takes no value"},
      {"--synthetic 100 --no-overlap=false", "--no-overlap takes no value"},
      {"--synthetic 100 --sync-bn=false", "--sync-bn takes no value"},
      {"--synthetic 100 --help=false", "--help takes no value"},
      {"--synthetic 100 --bucket-mb 1e300", "--bucket-mb must be in (0, 65536]"},
      {"--synthetic 100 --checkpoint-dir /dev/null/x", "--checkpoint-dir /dev/null/x: cannot create"},
      {"--synthetic 100 --log-dir /proc/x", "--log-dir /proc/x: cannot"},
      {"--synthetic 100 --trace /dev/null/t.json", "--trace /dev/null: cannot"},
      {"--synthetic 100 --trace .", "--trace .: is a folder"},
      {"--synthetic 100 --trace new_folder/", "--trace new_folder/: is a folder"},
      {"--synthetic 100 --eval-tta mirror", "--eval-tta must be none or flip, got 'mirror'"},
      {"--synthetic 100 --eval-only", "--eval-only needs --resume"},
      {"--synthetic 100 --eval-only --resume auto", "no checkpoints/last.pt to evaluate"},
      {"--synthetic 100 --eval-only --resume data_batch_1.bin", "not a readable PyTorch checkpoint"},
      {"--synthetic 100 --eval-only --resume nope.pt", "nope.pt: no such checkpoint file"},
      // --resume auto starts afresh only when nothing at all has the name (a dangling link's
      // run would otherwise start over and replace it).
      {"--synthetic 100 --resume auto --checkpoint-dir dangling",
       "dangling/last.pt: cannot read a checkpoint from it: a symbolic link to a missing file"},
      {"--synthetic 100 --resume .", ".: cannot read a checkpoint from it: a folder, not a file"},
      {"--eval-only --resume nope.pt", "--eval-only: no CIFAR-10 test set found"},
      {"--synthetic 100 --data .", "--data and --synthetic exclude each other"},
      {"--synthetic 100 --log-dir ''", "--log-dir must not be empty"},
      {"--synthetic 100 --checkpoint-dir ''", "--checkpoint-dir must not be empty"},
      {"--eval-only --resume nope.pt #CIFAR10_DIR=/nonexistent", "CIFAR10_DIR=/nonexistent does not hold test_batch.bin"},
      // --device auto on a machine without a visible GPU resolves to the CPU.
      {"--synthetic 100 --cuda-graph #CUDA_VISIBLE_DEVICES=", "--cuda-graph needs a CUDA device; this run is on cpu"},
      {"--synthetic 100 --cuda-graph #DT_FAULT_INJECT=rank=0,step=1,action=nan", "not with --cuda-graph"},
      // The test-only fault seam is parsed strictly and checked against the run.
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0,step=1,action=sleep", "sleep needs its seconds"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0,step=1,action=sleep:abc", "sleep needs its seconds"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0x,step=1,action=nan", "rank '0x' is not a rank"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0,step=0junk,action=nan", "step '0junk'"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0,step=1,action=kill:9", "kill takes no argument"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=3,step=1,action=nan", "rank 3 is outside a world of 1"},
      {"--synthetic 100 #DT_FAULT_INJECT=rank=0,step=1,action=corrupt:nope", "no parameter 'nope'"},
  };
  for (const auto& [case_args, needle] : cases) {
    // "ARGS #NAME=VALUE": the case sets an environment variable too.
    const auto hash = case_args.find(" #");
    const std::string args = case_args.substr(0, hash);
    const std::string env = hash == std::string::npos ? "" : "'" + case_args.substr(hash + 2) + "' ";
    auto r = test_util::run_command("cd " + dir.path().string() + " && env -u CIFAR10_DIR " + env +
                                    test_util::dist_train_binary() + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("dist_train: error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  auto bad_env = test_util::run_command("CIFAR10_DIR=/nonexistent " + test_util::dist_train_binary());
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env.output;
}

// Under mpirun, ranks that reject their input agree first: one line (from the lowest such rank),
// exit code 2, and no MPI_Abort; a rank whose input alone is bad is the one named.
TEST(CliBinary, BadInputUnderMpirunIsOneLineFromOneRank) {
  test_util::TempDir dir;
  const std::string mpirun = "cd " + dir.path().string() + " && " + test_util::mpirun() +
                             " --allow-run-as-root --oversubscribe ";
  const std::string ok = test_util::dist_train_binary() + " --synthetic 100 --batch-size 10";
  auto all = test_util::run_command(mpirun + "-np 2 " + ok + " --lr -1");
  EXPECT_EQ(all.exit_code, 2) << all.output;
  auto lines = [](const std::string& out) {
    size_t n = 0;
    for (size_t at = out.find("dist_train: error"); at != std::string::npos;
         at = out.find("dist_train: error", at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(lines(all.output), 1u) << all.output;
  EXPECT_NE(all.output.find("dist_train: error: rank 0: --lr"), std::string::npos) << all.output;
  EXPECT_EQ(all.output.find("MPI_ABORT"), std::string::npos) << all.output;
  auto one = test_util::run_command(mpirun + "-np 1 " + ok + " : -np 1 " + ok + " --batch-size 0");
  EXPECT_EQ(one.exit_code, 2) << one.output;
  EXPECT_EQ(lines(one.output), 1u) << one.output;
  EXPECT_NE(one.output.find("dist_train: error: rank 1: --batch-size"), std::string::npos)
      << one.output;
  // Found later, while the trainer sets up (a checkpoint every rank reads; a folder only rank 0
  // writes): the same, one line and exit 2 together.
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {" --resume /nonexistent/last.pt", "rank 0: /nonexistent/last.pt"},
           {" --checkpoint-dir /dev/null/x", "rank 0: --checkpoint-dir /dev/null/x"},
           {" --cuda-graph", "rank 0: --cuda-graph runs at world size 1 only"}}) {
    auto r = test_util::run_command(mpirun + "-np 2 " + ok + args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(lines(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find("dist_train: error: " + needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
  }
  // --help on some ranks only (an MPMD line): the others must not wait out a deadline for them.
  for (const auto& [line, needle] : std::vector<std::pair<std::string, std::string>>{
           {"-np 1 " + ok + " --help : -np 1 " + ok, "rank 0: --help was given to rank 0 but not to rank 1"},
           {"-np 1 " + ok + " : -np 1 " + ok + " --help", "rank 1: --help was given to rank 1 but not to rank 0"}}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = test_util::run_command(mpirun + line);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(lines(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find("dist_train: error: " + needle), std::string::npos) << r.output;
  }
  auto every = test_util::run_command(mpirun + "-np 2 " + ok + " --help");
  EXPECT_EQ(every.exit_code, 0) << every.output;
  EXPECT_EQ(every.output.find("Data-parallel ResNet training"),
            every.output.rfind("Data-parallel ResNet training")) << "printed once: " << every.output;
  EXPECT_NE(every.output.find("Data-parallel ResNet training"), std::string::npos) << every.output;
  // A launcher of one has a communicator, so SyncBatchNorm can be asked for; not with a graph.
  auto sync_bn = test_util::run_command(mpirun + "-np 1 " + ok + " --cuda-graph --sync-bn");
  EXPECT_EQ(sync_bn.exit_code, 2) << sync_bn.output;
  EXPECT_NE(sync_bn.output.find("--cuda-graph and --sync-bn on exclude each other"), std::string::npos)
      << sync_bn.output;
}

TEST(CliBinary, SrunWithoutMpiIsRefused) {
  // A fake Slurm environment: 4 tasks, no PMIx/PMI variables (srun without --mpi).
  auto r = test_util::run_command("env -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u OMPI_COMM_WORLD_SIZE "
                                  "SLURM_NTASKS=4 SLURM_PROCID=2 SLURM_LOCALID=0 " +
                                  test_util::dist_train_binary() + " --synthetic 100");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("srun --mpi=pmix"), std::string::npos) << r.output;
  // An MPI that does not speak the launcher's process manager comes up as a world of one in
  // every process: refused, naming the launcher's count, instead of N lone runs.
  for (const std::string env : {"PMI_SIZE=4 PMI_RANK=3", "OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1",
                                "PMIX_RANK=1 SLURM_PROCID=1 SLURM_STEP_NUM_TASKS=3 SLURM_NTASKS=3"}) {
    test_util::TempDir w;
    auto alone = test_util::run_command("cd " + w.path().string() + " && env " + env + " " +
                                        test_util::dist_train_binary() + " --synthetic 100");
    EXPECT_EQ(alone.exit_code, 2) << env << "\n" << alone.output;
    EXPECT_NE(alone.output.find("MPI_Init joined a world of 1"), std::string::npos) << alone.output;
    EXPECT_FALSE(std::filesystem::exists(w / "checkpoints/last.pt")) << env;
  }
  // A launcher variable that is not a count is a broken environment, not a check to skip.
  for (const std::string env : {"SLURM_NTASKS=abc SLURM_PROCID=0", "PMI_SIZE=4x PMI_RANK=0"}) {
    auto bad = test_util::run_command("env -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u OMPI_COMM_WORLD_SIZE " + env + " " +
                                      test_util::dist_train_binary() + " --synthetic 100");
    EXPECT_EQ(bad.exit_code, 2) << env << "\n" << bad.output;
    EXPECT_NE(bad.output.find("' is not a process count"), std::string::npos) << bad.output;
  }
  // One task under Slurm (srun -n 1, or sbatch's shell) is the single-process path.
  test_util::TempDir d;
  auto one = test_util::run_command("cd " + d.path().string() + " && SLURM_NTASKS=1 SLURM_PROCID=0 " +
                                    test_util::dist_train_binary() +
                                    " --synthetic 200 --batch-size 20 --max-steps 2 --eval-every 0");
  EXPECT_EQ(one.exit_code, 0) << one.output;
  // --sync-bn in a world of one without a launcher is plain BatchNorm, not an error.
  auto sync = test_util::run_command("cd " + d.path().string() + " && " + test_util::dist_train_binary() +
                                     " --synthetic 200 --batch-size 20 --max-steps 2 --eval-every 0 --sync-bn");
  EXPECT_EQ(sync.exit_code, 0) << sync.output;
}

TEST(CliBinary, HelpExitsZero) {
  auto r = test_util::run_command(test_util::dist_train_binary() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--batch-size"), std::string::npos);
}
