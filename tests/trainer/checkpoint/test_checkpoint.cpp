// trainer/checkpoint/: checkpoints loaded by PyTorch and PyTorch's files loaded here, bad files
// refused with one line, the input contract, the resume checks and the atomic write.
#include <gtest/gtest.h>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include "model/network.h"
#include "model/resnet.h"
#include "tests/test_util.h"
#include "trainer/checkpoint/atomic_file.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/errors.h"
#include "trainer/checkpoint/input_contract.h"
#include "trainer/checkpoint/resume_check.h"

using namespace dt;
using dt::test_util::TempDir;

namespace {
// The "logits" of reference_models.py's JSON line, every one of them, against ours.
void expect_same_logits(const std::string& output, const torch::Tensor& ours, const std::string& name) {
  auto pos = output.find("\"logits\": [[");
  ASSERT_NE(pos, std::string::npos) << output;
  std::istringstream py(output.substr(pos + 10));
  for (int64_t i = 0; i < ours.size(0); ++i) {
    for (int64_t k = 0; k < ours.size(1); ++k) {
      double v = 0;
      char sep = 0;
      py >> sep;  // "," between logits; "[[" before the first row, ",[" before the others
      if (k == 0) py >> sep;
      ASSERT_TRUE(py >> v) << name << ": " << output;
      EXPECT_NEAR(v, ours[i][k].item<double>(), 1e-4 * (1 + std::abs(v))) << name << " logit " << i << "," << k;
    }
    char close = 0;
    py >> close;
    ASSERT_EQ(close, ']') << name << ": row " << i << " of " << output;
  }
}
}  // namespace

TEST(Checkpoint, PyTorchLoadsTheModelStateDict) {
  DT_REQUIRE_PYTHON();
  for (const char* name : {"resnet20", "resnet9"}) {
    TempDir dir;
    torch::manual_seed(1);
    auto net = model::make_model(name);
    {  // running statistics as training leaves them (arbitrary ones would zero every ReLU or
       // shrink the activations layer by layer, and make the logits trivially equal)
      torch::NoGradGuard g;
      for (int i = 0; i < 30; ++i) net->forward(torch::randn({16, 3, 32, 32}));
    }
    trainer::TrainingState st;
    st.model_name = name;
    trainer::save_checkpoint(dir / "last.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
    auto r = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                    "/tests/python/reference_models.py load " + name + " " +
                                    (dir / "last.pt"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Same logits in Python as in C++ on the same input: the same network, not just the same names.
    net->eval();
    torch::manual_seed(0);
    auto x = torch::randn({4, 3, 32, 32});
    auto logits = net->forward(x);
    ASSERT_GT((logits[0] - logits[1]).abs().max().item<double>(), 1e-2)
        << name << ": logits that do not depend on the input compare nothing";
    expect_same_logits(r.output, logits, name);
  }
}

// Every form a PyTorch user saves a state dict in: {"model": dict(sd)}, {"model": sd} and the
// bare sd of torch.save(model.state_dict()) (a collections.OrderedDict with _metadata).
TEST(Checkpoint, CppLoadsWhatPyTorchSaved) {
  DT_REQUIRE_PYTHON();
  for (const std::string form : {"dict", "wrapped", "bare"}) {
    test_util::TempDir dir;
    const int seed = int(std::random_device{}() % 1000);  // fresh weights each time
    auto r = test_util::run_command(test_util::python() + " " + test_util::source_dir() +
                                    "/tests/python/reference_models.py save resnet14 " +
                                    (dir / "py.pt") + " " + std::to_string(seed) + " " + form);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto net = model::make_resnet("resnet14");
    auto loaded = trainer::load_checkpoint(dir / "py.pt", *net, nullptr, trainer::OptimizerKind::Adam);
    EXPECT_FALSE(loaded.full) << form << ": a Python state dict carries weights only";
    EXPECT_FALSE(loaded.state.input) << form << ": and no input contract";
    net->eval();
    torch::manual_seed(0);
    auto logits = net->forward(torch::randn({4, 3, 32, 32}));
    ASSERT_GT((logits[0] - logits[1]).abs().max().item<double>(), 1e-2)
        << "logits that do not depend on the input compare nothing";
    expect_same_logits(r.output, logits, "resnet14 " + form);
    EXPECT_EQ(net->named_buffers()["bn.num_batches_tracked"].item<int64_t>(), 7) << form;
  }
}

TEST(Checkpoint, RoundTripRestoresModelOptimizerPositionAndRandomStream) {
  test_util::TempDir dir;
  torch::manual_seed(2);
  auto a = model::make_resnet("resnet14");
  torch::optim::Adam opt(a->parameters(), torch::optim::AdamOptions(1e-3));
  torch::nn::functional::cross_entropy(a->forward(torch::randn({4, 3, 32, 32})),
                                       torch::randint(0, 10, {4})).backward();
  opt.step();  // the forward in training mode also moved the BatchNorm buffers
  trainer::TrainingState st;
  st.epoch = 3;
  st.samples_done = 120;
  st.step = 77;
  st.world_size = 4;
  st.best_accuracy = 0.625;
  st.config = "lr = 0.001\nseed = 5\n";
  st.model_name = "resnet14";
  st.seed = 5;
  st.train_size = 50000;
  trainer::save_checkpoint(dir / "c.pt", *a, &opt, trainer::OptimizerKind::Adam, st);
  const auto next_draws = torch::rand({8}, torch::kFloat64);  // what the saved stream draws next

  torch::manual_seed(9);
  auto b = model::make_resnet("resnet14");
  torch::optim::Adam opt_b(b->parameters(), torch::optim::AdamOptions(1e-3));
  auto loaded = trainer::load_checkpoint(dir / "c.pt", *b, &opt_b, trainer::OptimizerKind::Adam);
  ASSERT_TRUE(loaded.full);
  EXPECT_TRUE(torch::equal(torch::rand({8}, torch::kFloat64), next_draws))
      << "the CPU random stream continues where the checkpoint left it";
  EXPECT_EQ(loaded.state.epoch, 3);
  EXPECT_EQ(loaded.state.samples_done, 120);
  EXPECT_EQ(loaded.state.step, 77);
  EXPECT_EQ(loaded.state.world_size, 4);
  EXPECT_EQ(loaded.state.best_accuracy, 0.625);
  EXPECT_EQ(loaded.state.config, st.config);
  EXPECT_EQ(loaded.state.model_name, "resnet14");
  EXPECT_EQ(loaded.state.seed, 5);
  EXPECT_EQ(loaded.state.train_size, 50000);
  auto buffers_b = b->named_buffers();
  int64_t moved = 0;
  for (const auto& kv : a->named_buffers()) {
    ASSERT_NE(buffers_b.find(kv.key()), nullptr) << kv.key();
    EXPECT_TRUE(torch::equal(kv.value(), buffers_b[kv.key()])) << kv.key();
    if (kv.key().find("running_mean") != std::string::npos) moved += kv.value().abs().sum().item<double>() > 0;
  }
  EXPECT_GT(moved, 10) << "running statistics at their initial values compare nothing";
  auto pb = b->parameters();
  auto pa = a->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i]));
    const auto& sa = static_cast<torch::optim::AdamParamState&>(*opt.state()[pa[i].unsafeGetTensorImpl()]);
    const auto& sb = static_cast<torch::optim::AdamParamState&>(*opt_b.state()[pb[i].unsafeGetTensorImpl()]);
    EXPECT_EQ(sa.step(), sb.step());
    EXPECT_TRUE(torch::equal(sa.exp_avg(), sb.exp_avg()));
    EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb.exp_avg_sq()));
  }
}

namespace {
// The message of the CheckpointError that loading `path` into a resnet14 raises; "" if none.
std::string load_error(const std::string& path) {
  auto net = model::make_resnet("resnet14");
  try {
    trainer::load_checkpoint(path, *net, nullptr, trainer::OptimizerKind::Adam);
  } catch (const trainer::CheckpointError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Checkpoint, BadCheckpointsAreRejectedClearly) {
  test_util::TempDir dir;
  auto net = model::make_resnet("resnet14");
  trainer::TrainingState st;
  st.model_name = "resnet14";
  trainer::save_checkpoint(dir / "good.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  std::ifstream in(dir / "good.pt", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  auto write = [&](const std::string& name, const std::vector<char>& b) {
    std::ofstream(dir / name, std::ios::binary).write(b.data(), std::streamsize(b.size()));
  };
  write("truncated.pt", std::vector<char>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  // Flip bytes in the middle of the file (tensor data) and near the end (zip directory).
  auto flipped = bytes;
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 16; ++i) flipped[i] ^= 0x5a;
  write("flipped.pt", flipped);
  auto flipped_end = bytes;
  flipped_end[bytes.size() - 30] ^= 0xff;
  write("flipped_end.pt", flipped_end);
  write("text.pt", std::vector<char>{'h', 'e', 'l', 'l', 'o'});
  auto other = model::make_resnet("resnet20");
  trainer::save_checkpoint(dir / "other.pt", *other, nullptr, trainer::OptimizerKind::Adam, st);
  {  // well-formed files whose values no run writes: a NaN weight, a negative running variance
    torch::NoGradGuard g;
    auto bad = model::make_resnet("resnet14");
    bad->named_parameters()["layer2.1.conv1.weight"][3][1][0][2] = std::nan("");
    trainer::save_checkpoint(dir / "nan.pt", *bad, nullptr, trainer::OptimizerKind::Adam, st);
    auto negative = model::make_resnet("resnet14");
    negative->named_buffers()["layer1.0.bn2.running_var"][5] = -0.5;
    trainer::save_checkpoint(dir / "negvar.pt", *negative, nullptr, trainer::OptimizerKind::Adam, st);
  }

  for (const char* name : {"truncated.pt", "flipped.pt", "flipped_end.pt", "text.pt", "other.pt",
                           "missing.pt", "nan.pt", "negvar.pt"}) {
    auto target = model::make_resnet("resnet14");
    auto before = trainer::state_dict(*target);
    try {
      trainer::load_checkpoint(dir / name, *target, nullptr, trainer::OptimizerKind::Adam);
      ADD_FAILURE() << name << " was accepted";
    } catch (const trainer::CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
    }
    // A rejected checkpoint leaves the model untouched.
    for (const auto& kv : trainer::state_dict(*target)) {
      EXPECT_TRUE(torch::equal(kv.value(), before.at(kv.key()))) << name << " " << kv.key();
    }
  }
  EXPECT_NE(load_error(dir / "nan.pt").find("'layer2.1.conv1.weight' holds non-finite values"),
            std::string::npos);
  EXPECT_NE(load_error(dir / "negvar.pt").find("'layer1.0.bn2.running_var' holds a negative variance"),
            std::string::npos);
  // Adam's state: an Inf in a first moment, a negative second moment.
  for (const std::string what : {"exp_avg", "exp_avg_sq"}) {
    auto net_a = model::make_resnet("resnet14");
    torch::optim::Adam adam(net_a->parameters(), torch::optim::AdamOptions(1e-3));
    torch::nn::functional::cross_entropy(net_a->forward(torch::randn({2, 3, 32, 32})),
                                         torch::randint(0, 10, {2})).backward();
    adam.step();
    auto& state = static_cast<torch::optim::AdamParamState&>(
        *adam.state()[net_a->parameters()[4].unsafeGetTensorImpl()]);
    {
      torch::NoGradGuard g;
      (what == "exp_avg" ? state.exp_avg() : state.exp_avg_sq()).view(-1)[7] =
          what == "exp_avg" ? std::numeric_limits<double>::infinity() : -1.0;
    }
    trainer::save_checkpoint(dir / "adam.pt", *net_a, &adam, trainer::OptimizerKind::Adam, st);
    auto target = model::make_resnet("resnet14");
    torch::optim::Adam target_adam(target->parameters(), torch::optim::AdamOptions(1e-3));
    try {
      trainer::load_checkpoint(dir / "adam.pt", *target, &target_adam, trainer::OptimizerKind::Adam);
      ADD_FAILURE() << "a bad " << what << " was accepted";
    } catch (const trainer::CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("optimizer state '" + what + "' of parameter 4 holds"),
                std::string::npos) << e.what();
    }
  }
}

namespace {

// The checkpoint at `from` re-saved after `edit` changes its top-level dict (tensors untouched).
void rewrite_checkpoint(const std::string& from, const std::string& to,
                        const std::function<void(c10::impl::GenericDict&)>& edit) {
  std::ifstream in(from, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  auto dict = trainer::torch_load_bytes(bytes, from).toGenericDict();
  edit(dict);
  trainer::write_file_atomically(to, trainer::torch_save_bytes(dict));
}


}  // namespace

// The position and settings are as protected as the weights: an edited epoch fails the checksum;
// an impossible one in an older-format file (whose checksum covered tensors only) is refused on
// its own; a missing entry is a CheckpointError, not an out_of_range from the container.
TEST(Checkpoint, PositionIsChecksummedAndRangeChecked) {
  TempDir dir;
  auto net = model::make_resnet("resnet14");
  trainer::TrainingState st;
  st.epoch = 2;
  st.samples_done = 300;
  st.step = 90;
  st.seed = 11;
  st.train_size = 600;
  st.model_name = "resnet14";
  st.config = "lr = 0.001\n";
  trainer::save_checkpoint(dir / "good.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  EXPECT_EQ(load_error(dir / "good.pt"), "");

  rewrite_checkpoint(dir / "good.pt", dir / "edited.pt",
                     [](auto& d) { d.insert_or_assign("epoch", int64_t(7)); });
  EXPECT_NE(load_error(dir / "edited.pt").find("checksum mismatch"), std::string::npos);
  rewrite_checkpoint(dir / "good.pt", dir / "seed.pt",
                     [](auto& d) { d.insert_or_assign("seed", int64_t(12)); });
  EXPECT_NE(load_error(dir / "seed.pt").find("checksum mismatch"), std::string::npos);

  // Format 1 (no seed or train_size; tensors-only checksum) still loads, position intact...
  auto v1 = [](int64_t epoch) {
    return [epoch](c10::impl::GenericDict& d) {
      d.insert_or_assign("format", std::string("dist_train/1"));
      (void)d.erase("seed");
      (void)d.erase("train_size");
      d.insert_or_assign("epoch", epoch);
      uint64_t h = 1469598103934665603ULL;  // FNV-1a over the tensors, as format 1 wrote it
      for (const auto& kv : d.at("model").toGenericDict()) {
        const auto& key = kv.key().toStringRef();
        for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
        auto t = kv.value().toTensor().contiguous();
        const auto* p = static_cast<const unsigned char*>(t.data_ptr());
        for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ULL;
      }
      d.insert_or_assign("checksum", int64_t(h));
    };
  };
  rewrite_checkpoint(dir / "good.pt", dir / "v1.pt", v1(2));
  EXPECT_EQ(load_error(dir / "v1.pt"), "");
  auto m = model::make_resnet("resnet14");
  auto loaded = trainer::load_checkpoint(dir / "v1.pt", *m, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_EQ(loaded.state.epoch, 2);
  EXPECT_EQ(loaded.state.samples_done, 300);
  EXPECT_EQ(loaded.state.train_size, 0) << "unknown in format 1";
  // ...but an impossible position is refused even where the checksum cannot see it.
  rewrite_checkpoint(dir / "good.pt", dir / "negative.pt", v1(-3));
  const auto negative = load_error(dir / "negative.pt");
  EXPECT_NE(negative.find("impossible training position (epoch -3"), std::string::npos) << negative;

  rewrite_checkpoint(dir / "good.pt", dir / "no_state.pt", [](auto& d) {
    auto opt = d.at("optimizer").toGenericDict();
    (void)opt.erase("state");
  });
  const auto no_state = load_error(dir / "no_state.pt");
  EXPECT_NE(no_state.find("no 'state' entry"), std::string::npos) << no_state;
}

// The input contract: written as the run's normalisation says, read back, covered by the
// checksum; one that dist_train cannot apply is refused; a format-2 file written before the
// entry existed (no "preprocess", checksum without it) still loads, with no contract.
TEST(Checkpoint, InputContractRoundTripsAndIsChecked) {
  TempDir dir;
  auto net = model::make_resnet("resnet14");
  trainer::TrainingState st;
  st.model_name = "resnet14";
  st.config = "lr = 0.001\n";
  for (auto n : {data::Normalization::None, data::Normalization::Cifar}) {
    st.input = n;
    trainer::save_checkpoint(dir / "c.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
    auto probe = model::make_resnet("resnet14");
    auto loaded = trainer::load_checkpoint(dir / "c.pt", *probe, nullptr, trainer::OptimizerKind::Adam);
    ASSERT_TRUE(loaded.state.input);
    EXPECT_EQ(*loaded.state.input, n);
  }
  // Now a cifar file. Another valid contract in its place fails the checksum.
  rewrite_checkpoint(dir / "c.pt", dir / "swapped.pt", [](auto& d) {
    d.insert_or_assign("preprocess", trainer::preprocess_entry(data::Normalization::None));
  });
  EXPECT_NE(load_error(dir / "swapped.pt").find("checksum mismatch"), std::string::npos);
  rewrite_checkpoint(dir / "c.pt", dir / "odd.pt", [](auto& d) {
    auto entry = trainer::preprocess_entry(data::Normalization::Cifar);
    c10::impl::GenericList half(c10::AnyType::get());
    for (int c = 0; c < 3; ++c) half.push_back(0.5);
    entry.insert_or_assign("std", half);
    d.insert_or_assign("preprocess", entry);
  });
  EXPECT_NE(load_error(dir / "odd.pt").find("'preprocess' has a mean and std dist_train cannot apply"),
            std::string::npos) << load_error(dir / "odd.pt");
  st.input.reset();  // as written before the entry existed
  trainer::save_checkpoint(dir / "old.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  auto probe = model::make_resnet("resnet14");
  auto old = trainer::load_checkpoint(dir / "old.pt", *probe, nullptr, trainer::OptimizerKind::Adam);
  EXPECT_TRUE(old.full);
  EXPECT_FALSE(old.state.input);
}

// The global batch: written, read back, covered by the checksum; absent (0) in a file written
// before it, which still loads; a negative one is an impossible position.
TEST(Checkpoint, GlobalBatchRoundTripsAndIsChecksummed) {
  TempDir dir;
  auto net = model::make_resnet("resnet14");
  trainer::TrainingState st;
  st.model_name = "resnet14";
  st.config = "lr = 0.001\n";
  st.world_size = 4;
  st.global_batch = 60;
  trainer::save_checkpoint(dir / "g.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  auto probe = model::make_resnet("resnet14");
  EXPECT_EQ(trainer::load_checkpoint(dir / "g.pt", *probe, nullptr, trainer::OptimizerKind::Adam).state.global_batch, 60);
  rewrite_checkpoint(dir / "g.pt", dir / "edited.pt", [](auto& d) { d.insert_or_assign("global_batch", int64_t(120)); });
  EXPECT_NE(load_error(dir / "edited.pt").find("checksum mismatch"), std::string::npos) << load_error(dir / "edited.pt");
  rewrite_checkpoint(dir / "g.pt", dir / "dropped.pt", [](auto& d) { ASSERT_EQ(d.erase("global_batch"), 1u); });
  EXPECT_NE(load_error(dir / "dropped.pt").find("checksum mismatch"), std::string::npos);
  st.global_batch = 0;  // as written before the entry existed
  trainer::save_checkpoint(dir / "old.pt", *net, nullptr, trainer::OptimizerKind::Adam, st);
  EXPECT_EQ(trainer::load_checkpoint(dir / "old.pt", *probe, nullptr, trainer::OptimizerKind::Adam).state.global_batch, 0);
  // The resume's line: kept (on another world size), or changed (with how to keep it).
  trainer::TrainingState saved = st, now = st;
  saved.global_batch = 60;
  now.global_batch = 60;
  now.world_size = 2;
  EXPECT_EQ(trainer::global_batch_note("g.pt", saved, now),
            "resume: the global batch of 60 images per step is kept (4 rank(s) wrote g.pt, 2 continue): "
            "the steps go on as the uninterrupted run's");
  now.global_batch = 30;
  EXPECT_NE(trainer::global_batch_note("g.pt", saved, now).find("changes from 60 images per step (g.pt) to 30"),
            std::string::npos);
  EXPECT_EQ(trainer::global_batch_note("old.pt", st, now), "") << "an older file does not say";
}

// --eval-only's choice: the file's contract; for a file without one, an explicit flag, else the
// CIFAR-10 mean and std for an older dist_train checkpoint and a fresh run's choice for a plain
// state dict; a refusal when the flag and the contract disagree.
TEST(Checkpoint, EvalNormalizationFollowsTheContract) {
  using data::Normalization;
  using trainer::InputSource;
  const auto pick = [](Normalization asked, std::optional<Normalization> stored, bool dist_train_file,
                       Normalization fresh) {
    const auto in = trainer::eval_normalization(asked, stored, dist_train_file, fresh, "f.pt");
    return std::make_pair(in.normalization, in.source);
  };
  for (const bool ours : {true, false}) {
    for (const auto fresh : {Normalization::None, Normalization::Cifar}) {
      EXPECT_EQ(pick(Normalization::Auto, Normalization::None, ours, fresh),
                std::make_pair(Normalization::None, InputSource::Stored));
      EXPECT_EQ(pick(Normalization::Auto, Normalization::Cifar, ours, fresh),
                std::make_pair(Normalization::Cifar, InputSource::Stored));
      EXPECT_EQ(pick(Normalization::None, Normalization::None, ours, fresh),
                std::make_pair(Normalization::None, InputSource::Stored));
      EXPECT_EQ(pick(Normalization::None, std::nullopt, ours, fresh),
                std::make_pair(Normalization::None, InputSource::Given));
      EXPECT_EQ(pick(Normalization::Cifar, std::nullopt, ours, fresh),
                std::make_pair(Normalization::Cifar, InputSource::Given));
      EXPECT_THROW(pick(Normalization::Cifar, Normalization::None, ours, fresh), trainer::CheckpointError);
      EXPECT_THROW(pick(Normalization::None, Normalization::Cifar, ours, fresh), trainer::CheckpointError);
    }
    EXPECT_EQ(pick(Normalization::Auto, std::nullopt, true, Normalization::None),
              std::make_pair(Normalization::Cifar, InputSource::OlderCheckpoint)) << "as before the contract";
  }
  EXPECT_EQ(pick(Normalization::Auto, std::nullopt, false, Normalization::None),
            std::make_pair(Normalization::None, InputSource::FreshRun)) << "the seed recipe's ToTensor()";
  EXPECT_EQ(pick(Normalization::Auto, std::nullopt, false, Normalization::Cifar),
            std::make_pair(Normalization::Cifar, InputSource::FreshRun)) << "--augment standard's";
  const auto note = [](Normalization n, InputSource s) { return trainer::no_contract_note("f.pt", {n, s}); };
  EXPECT_NE(note(Normalization::None, InputSource::FreshRun).find("--normalize none (a plain PyTorch state dict"),
            std::string::npos);
  EXPECT_NE(note(Normalization::Cifar, InputSource::OlderCheckpoint).find("--normalize cifar (a dist_train checkpoint"),
            std::string::npos);
  EXPECT_NE(note(Normalization::None, InputSource::Given).find("--normalize none as given"), std::string::npos);
}

TEST(ResumeCheck, MidEpochNeedsTheSameSeedAndTrainingSet) {
  trainer::TrainingState saved, now;
  saved.epoch = 1;
  saved.samples_done = 240;
  saved.seed = now.seed = 11;
  saved.train_size = now.train_size = 600;
  EXPECT_NO_THROW(trainer::check_resumable("c.pt", saved, now));
  auto error = [&] {
    try {
      trainer::check_resumable("c.pt", saved, now);
    } catch (const trainer::CheckpointError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  now.seed = 12;
  EXPECT_NE(error().find("c.pt: stopped 240 samples into epoch 2 with --seed 11, this run has "
                         "--seed 12"), std::string::npos) << error();
  now.seed = 11;
  now.train_size = 500;
  EXPECT_NE(error().find("of a 600-sample training set, this run's has 500"), std::string::npos)
      << error();
  // At an epoch boundary both may change.
  saved.samples_done = 0;
  now.seed = 3;
  EXPECT_NO_THROW(trainer::check_resumable("c.pt", saved, now));
  // A format-1 file (training set size unknown) past the end of this run's set.
  saved.samples_done = 550;
  saved.train_size = 0;
  EXPECT_NE(error().find("past the end of this run's 500-sample training set"), std::string::npos)
      << error();
}

TEST(ResumeCheck, ChangedSettingsAreListedInOrder) {
  const auto changes = trainer::changed_settings(
      "lr = 0.001\nbatch_size = 30\nresume = \nseed = 0\n",
      "lr = 0.5\nbatch_size = 30\nresume = auto\nseed = 0\nnew_flag = 1\n");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "lr: 0.001 -> 0.5");
}

// Files written before the configuration printed numbers in their shortest form hold
// "0.90000000000000002" for 0.9: the same number, so no change to report; a real change still is.
// Files written before --normalize existed normalised with the CIFAR-10 mean and std: resuming
// one with another normalisation is listed as a change.
TEST(ResumeCheck, AnOlderFileWasTrainedOnCifarNormalisedInput) {
  const std::string old = "augment = seed\nlr = 0.001\n";
  EXPECT_EQ(trainer::changed_settings(trainer::with_implicit_settings(old),
                                      "augment = seed\nnormalize = none\nlr = 0.001\n"),
            std::vector<std::string>{"normalize: cifar -> none"});
  EXPECT_TRUE(trainer::changed_settings(trainer::with_implicit_settings(old),
                                        "augment = seed\nnormalize = cifar\nlr = 0.001\n").empty());
  const std::string now = "normalize = none\n";
  EXPECT_EQ(trainer::with_implicit_settings(now), now) << "a file that says is taken at its word";
  EXPECT_EQ(trainer::with_implicit_settings(""), "");
}

TEST(ResumeCheck, NumbersInAnOlderSpellingAreNotChanges) {
  const auto changes = trainer::changed_settings("momentum = 0.90000000000000002\nlr = 0.1\n",
                                                 "momentum = 0.9\nlr = 0.10000000000000001\n");
  EXPECT_TRUE(changes.empty()) << changes.front();
  EXPECT_EQ(trainer::changed_settings("momentum = 0.90000000000000002\n", "momentum = 0.8\n").size(), 1u);
}

TEST(Checkpoint, AtomicWriteReplacesWholeFile) {
  TempDir dir;
  trainer::write_file_atomically(dir / "f", std::vector<char>(1000, 'a'));
  trainer::write_file_atomically(dir / "f", std::vector<char>(10, 'b'));
  std::ifstream in(dir / "f");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(s, std::string(10, 'b'));
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += !e.path().empty();
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
}
