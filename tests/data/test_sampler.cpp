// data/sampler: disjoint shards that cover each epoch, world sizes 1..8, even and uneven sizes.
#include <gtest/gtest.h>
#include <set>
#include "data/errors.h"
#include "data/sampler.h"

using namespace dt::data;

namespace {
ShardSpec spec(int64_t n, int64_t world, int64_t rank, int64_t batch, bool drop_last) {
  ShardSpec s;
  s.dataset_size = n;
  s.world_size = world;
  s.rank = rank;
  s.batch_per_rank = batch;
  s.drop_last = drop_last;
  s.seed = 42;
  return s;
}
}  // namespace

TEST(ShardedSampler, ShardsAreDisjointAndCoverEachEpoch) {
  for (int64_t n : {96, 97, 100, 1000, 1013}) {
    for (int64_t world = 1; world <= 8; ++world) {
      for (bool drop_last : {true, false}) {
        const int64_t batch = 3;
        if (batch * world > n) continue;
        std::vector<int64_t> seen;
        int64_t steps = -1;
        for (int64_t r = 0; r < world; ++r) {
          ShardedSampler s(spec(n, world, r, batch, drop_last));
          if (steps < 0) steps = s.steps_per_epoch();
          EXPECT_EQ(s.steps_per_epoch(), steps) << "every rank runs the same number of steps";
          for (int64_t step = 0; step < s.steps_per_epoch(); ++step) {
            auto idx = s.indices(/*epoch=*/2, step);
            ASSERT_EQ(idx.size(0), batch);
            for (int64_t i = 0; i < batch; ++i) seen.push_back(idx[i].item<int64_t>());
          }
        }
        std::set<int64_t> unique(seen.begin(), seen.end());
        const int64_t global = batch * world;
        if (drop_last) {
          EXPECT_EQ(seen.size(), size_t(n / global * global));
          EXPECT_EQ(unique.size(), seen.size()) << "n=" << n << " world=" << world;
        } else {
          EXPECT_EQ(unique.size(), size_t(n)) << "padding must cover every sample";
          EXPECT_EQ(seen.size(), size_t((n + global - 1) / global * global));
        }
        for (auto v : unique) ASSERT_TRUE(v >= 0 && v < n);
      }
    }
  }
}

TEST(ShardedSampler, OrderDiffersBetweenEpochsAndRepeatsForSameSeed) {
  ShardedSampler a(spec(500, 2, 0, 10, true)), b(spec(500, 2, 0, 10, true));
  EXPECT_TRUE(torch::equal(a.indices(0, 0), b.indices(0, 0)));
  EXPECT_TRUE(torch::equal(a.indices(3, 7), b.indices(3, 7)));
  EXPECT_FALSE(torch::equal(a.permutation(0), a.permutation(1)));
  auto other_seed = spec(500, 2, 0, 10, true);
  other_seed.seed = 43;
  EXPECT_FALSE(torch::equal(ShardedSampler(other_seed).permutation(0), a.permutation(0)));
}

TEST(ShardedSampler, GlobalBatchIsTheSameWhateverTheWorldSize) {
  // 1 rank x 60 and 2 ranks x 30 and 4 x 15 see the same samples in the same global step.
  ShardedSampler one(spec(600, 1, 0, 60, true));
  for (int64_t world : {2, 4}) {
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < world; ++r) {
      parts.push_back(ShardedSampler(spec(600, world, r, 60 / world, true)).indices(1, 4));
    }
    EXPECT_TRUE(torch::equal(torch::cat(parts), one.indices(1, 4))) << world;
  }
}

TEST(ShardedSampler, BatchLargerThanDatasetIsAClearError) {
  try {
    ShardedSampler s(spec(100, 4, 0, 30, true));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the dataset"), std::string::npos);
  }
}
