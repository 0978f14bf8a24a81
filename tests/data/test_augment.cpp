// data/augment: the fused crop + flip + normalise agrees with a simple reference built from
// ATen ops (pad, slice, flip, normalise) on random images; draws stay in bounds and depend only
// on (seed, epoch, sample index).
#include <gtest/gtest.h>
#include <random>
#include "data/augment.h"
#include "data/errors.h"
#include "data/loader.h"

using namespace dt::data;

namespace {

torch::Tensor random_images(int64_t n, int64_t size, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(0, 256, {n, 3, size, size}, gen, torch::kUInt8);
}

// The reference: the obvious, slow way, one sample at a time.
torch::Tensor reference(const torch::Tensor& source, const torch::Tensor& indices,
                        const AugmentGeometry& g, const torch::Tensor& draws) {
  using namespace torch::indexing;
  auto mean = torch::tensor({kCifarMean[0], kCifarMean[1], kCifarMean[2]}).view({3, 1, 1});
  auto stdv = torch::tensor({kCifarStd[0], kCifarStd[1], kCifarStd[2]}).view({3, 1, 1});
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < indices.size(0); ++b) {
    auto img = source[indices[b].item<int64_t>()].to(torch::kFloat64).unsqueeze(0);
    if (g.pad > 0) {
      img = g.reflect ? torch::reflection_pad2d(img, {g.pad, g.pad, g.pad, g.pad})
                      : torch::constant_pad_nd(img, {g.pad, g.pad, g.pad, g.pad}, 0);
    }
    const int64_t oy = draws[b][0].item<int64_t>(), ox = draws[b][1].item<int64_t>();
    auto crop = img[0].index({Slice(), Slice(oy, oy + 32), Slice(ox, ox + 32)});
    if (draws[b][2].item<int64_t>()) crop = crop.flip({2});
    auto normalized = (crop / 255.0 - mean) / stdv;
    if (g.cutout > 0) {
      const int64_t cy = draws[b][3].item<int64_t>(), cx = draws[b][4].item<int64_t>();
      normalized.index_put_({Slice(), Slice(cy, cy + g.cutout), Slice(cx, cx + g.cutout)}, 0.0);
    }
    out.push_back(normalized.to(torch::kFloat32));
  }
  return torch::stack(out);
}

AugmentGeometry standard_geometry(int32_t pad, bool reflect, int64_t cutout = 0) {
  AugmentSpec s;
  s.mode = AugmentMode::Standard;
  s.pad = pad;
  s.pad_mode = reflect ? PadMode::Reflect : PadMode::Zero;
  s.cutout = cutout;
  return geometry_for(s, 32, true);
}

}  // namespace

TEST(Augment, MatchesReferenceForZeroAndReflectPadding) {
  auto source = random_images(50, 32, 7);
  auto indices = torch::randint(0, 50, {40}, torch::kInt64);
  for (bool reflect : {false, true}) {
    for (int32_t pad : {0, 2, 4}) {
      auto g = standard_geometry(pad, reflect);
      for (bool channels_last : {false, true}) {
        auto got = augment_batch(source, indices, g, true, 11, 3, torch::kFloat32, channels_last);
        auto want = reference(source, indices, g, sample_draws(indices, g, 11, 3));
        EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5))
            << "reflect=" << reflect << " pad=" << pad
            << " max diff " << (got - want).abs().max().item<float>();
        EXPECT_EQ(got.is_contiguous(at::MemoryFormat::ChannelsLast), channels_last);
      }
    }
  }
}

TEST(Augment, SeedModeCropsTheResizedImage) {
  auto images = random_images(20, 32, 8);
  auto source = prepare_source(images, AugmentMode::Seed);
  ASSERT_EQ(source.sizes(), (std::vector<int64_t>{20, 3, 40, 40}));
  AugmentSpec s;
  s.mode = AugmentMode::Seed;
  auto g = geometry_for(s, 40, true);
  EXPECT_EQ(g.pad, 0);
  EXPECT_EQ(g.crop_range(), 9);
  auto indices = torch::arange(20, torch::kInt64);
  auto got = augment_batch(source, indices, g, true, 5, 0, torch::kFloat32, false);
  auto want = reference(source, indices, g, sample_draws(indices, g, 5, 0));
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5));
}

TEST(Augment, CropsStayInBoundsAndUseTheWholeRange) {
  auto g = standard_geometry(4, false);
  auto draws = sample_draws(torch::arange(20000, torch::kInt64), g, 1, 0);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(draws.select(1, k).min().item<int64_t>(), 0);
    EXPECT_EQ(draws.select(1, k).max().item<int64_t>(), 8);
  }
  const double flips = draws.select(1, 2).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(flips, 0.5, 0.02);
}

TEST(Augment, FlipIsAMirror) {
  auto source = random_images(64, 32, 9);
  auto g = standard_geometry(0, false);  // no crop shift: only flips vary
  auto indices = torch::arange(64, torch::kInt64);
  auto out = augment_batch(source, indices, g, true, 3, 0, torch::kFloat32, false);
  auto plain_g = g;
  plain_g.random_flip = 0;
  auto plain = augment_batch(source, indices, plain_g, true, 3, 0, torch::kFloat32, false);
  auto draws = sample_draws(indices, g, 3, 0);
  int flipped = 0;
  for (int64_t b = 0; b < 64; ++b) {
    const bool f = draws[b][2].item<int64_t>() == 1;
    flipped += f;
    EXPECT_TRUE(torch::equal(out[b], f ? plain[b].flip({2}) : plain[b])) << b;
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 64);
}

TEST(Augment, SameSeedSameOutputOtherEpochOtherOutput) {
  auto source = random_images(30, 32, 10);
  auto g = standard_geometry(4, false);
  auto idx = torch::arange(30, torch::kInt64);
  auto a = augment_batch(source, idx, g, true, 1, 0, torch::kFloat32, true);
  auto b = augment_batch(source, idx, g, true, 1, 0, torch::kFloat32, true);
  auto c = augment_batch(source, idx, g, true, 1, 1, torch::kFloat32, true);
  auto d = augment_batch(source, idx, g, true, 2, 0, torch::kFloat32, true);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_FALSE(torch::equal(a, d));
}

TEST(Augment, ASampleGetsTheSameAugmentationWhateverBatchOrRankHoldsIt) {
  // Rank/world changes only which batch position a sample lands in; its draw must not change.
  auto source = random_images(10, 32, 12);
  auto g = standard_geometry(4, true);
  auto alone = augment_batch(source, torch::tensor({7}, torch::kInt64), g, true, 4, 2,
                             torch::kFloat32, false);
  auto among = augment_batch(source, torch::tensor({3, 9, 7, 1}, torch::kInt64), g, true, 4, 2,
                             torch::kFloat32, false);
  EXPECT_TRUE(torch::equal(alone[0], among[2]));
}

TEST(Augment, EvaluationTransformOnlyNormalises) {
  auto source = random_images(4, 32, 13);
  auto g = geometry_for(AugmentSpec{AugmentMode::None}, 32, false);
  auto idx = torch::arange(4, torch::kInt64);
  auto out = augment_batch(source, idx, g, true, 0, 0, torch::kFloat32, false);
  auto mean = torch::tensor({kCifarMean[0], kCifarMean[1], kCifarMean[2]}).view({1, 3, 1, 1});
  auto stdv = torch::tensor({kCifarStd[0], kCifarStd[1], kCifarStd[2]}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(out, (source.to(torch::kFloat32) / 255 - mean) / stdv, 1e-5, 1e-5));
}

TEST(Augment, BadOptionsAreClearErrors) {
  EXPECT_THROW(parse_augment_mode("fancy"), DataError);
  EXPECT_THROW(parse_pad_mode("wrap"), DataError);
  AugmentSpec s;
  s.pad = -1;
  EXPECT_THROW(validate(s), DataError);
  s.pad = 4;
  s.cutout = 33;
  EXPECT_THROW(validate(s), DataError);
  s.cutout = -1;
  EXPECT_THROW(validate(s), DataError);
}

TEST(Augment, CutoutZeroesOneSquareInsideEachImage) {
  auto source = random_images(200, 32, 15);
  auto indices = torch::randperm(200, torch::kInt64);
  for (int64_t side : {1, 8, 32}) {
    auto g = standard_geometry(4, false, side);
    auto got = augment_batch(source, indices, g, true, 6, 1, torch::kFloat32, true);
    auto draws = sample_draws(indices, g, 6, 1);
    EXPECT_TRUE(torch::allclose(got, reference(source, indices, g, draws), 1e-5, 1e-5)) << side;
    // Normalised pixels are never exactly 0 (the mean is not a multiple of 1/255), so the zeros
    // are the square, whole and inside the image, in every sample.
    auto zeros = (got == 0).sum({1, 2, 3});
    EXPECT_TRUE((zeros == 3 * side * side).all().item<bool>()) << side;
    // Crop and flip draws are those of the same run without cutout.
    auto plain = sample_draws(indices, standard_geometry(4, false), 6, 1);
    EXPECT_TRUE(torch::equal(draws.slice(1, 0, 3), plain.slice(1, 0, 3)));
  }
  auto g = standard_geometry(4, false, 8);
  auto draws = sample_draws(torch::arange(20000, torch::kInt64), g, 1, 0);
  for (int k = 3; k < 5; ++k) {  // origins cover 0..24 on both axes, independently
    EXPECT_EQ(draws.select(1, k).min().item<int64_t>(), 0);
    EXPECT_EQ(draws.select(1, k).max().item<int64_t>(), 24);
  }
  const double same = (draws.select(1, 3) == draws.select(1, 4)).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(same, 1.0 / 25, 0.01);
  AugmentSpec eval_spec;
  eval_spec.cutout = 8;
  EXPECT_EQ(geometry_for(eval_spec, 32, /*train=*/false).cutout, 0) << "evaluation has no cutout";
}

TEST(TrainLoader, PrefetchDoesNotChangeBatchesAndEpochsAdvance) {
  Dataset ds{random_images(100, 32, 14), torch::arange(100, torch::kInt64).remainder(10), "t"};
  LoaderOptions o;
  o.shard.batch_per_rank = 30;
  o.shard.seed = 5;
  o.prefetch = true;
  TrainLoader with(ds, o);
  o.prefetch = false;
  TrainLoader without(ds, o);
  ASSERT_EQ(with.steps_per_epoch(), 3);
  for (int i = 0; i < 7; ++i) {
    auto a = with.next(), b = without.next();
    EXPECT_EQ(a.epoch, i / 3);
    EXPECT_EQ(a.step, i % 3);
    EXPECT_TRUE(torch::equal(a.images, b.images));
    EXPECT_TRUE(torch::equal(a.labels, b.labels));
    EXPECT_TRUE(torch::equal(a.labels, a.indices.remainder(10)));
  }
}

// Training batches and the evaluation set feed the network the same input: with normalisation
// off, both are the pixel / 255 (the seed's ToTensor()); with it on, both the CIFAR-10 mean/std.
TEST(EvalSet, NormalisesAsTheTrainingBatchesDo) {
  const auto seed = uint64_t(std::random_device{}());
  Dataset ds{random_images(40, 32, seed), torch::arange(40, torch::kInt64).remainder(10), "t"};
  for (bool normalize : {false, true}) {
    LoaderOptions o;
    o.augment.mode = AugmentMode::None;  // no crop or flip: sample i is image i, as evaluated
    o.augment.normalize = normalize;
    o.shard.batch_per_rank = 40;
    o.prefetch = false;
    TrainLoader loader(ds, o);
    auto train = loader.next();
    EvalSet eval(ds, torch::kCPU, torch::kFloat32, /*channels_last=*/true, normalize);
    auto all = eval.slice(0, 40);
    EXPECT_TRUE(torch::equal(all.images.index_select(0, train.indices), train.images)) << normalize;
    if (!normalize) {
      EXPECT_TRUE(torch::allclose(all.images, ds.images.to(torch::kFloat32) / 255, 0, 1e-7));
    } else {
      EXPECT_LT(all.images.mean().item<double>(), 0.2) << "centred, not pixel / 255";
    }
  }
}
