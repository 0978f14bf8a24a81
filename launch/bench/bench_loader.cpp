// bench_loader DATA_DIR BATCH BATCHES [AUGMENT]: images/s of the training loader alone (sample
// indices, gather, crop, flip, normalise) on one CPU thread, without prefetch. Prints one JSON line.
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <string>
#include "data/cifar10.h"
#include "data/loader.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_loader DATA_DIR BATCH BATCHES [seed|standard]\n");
    return 2;
  }
  torch::set_num_threads(1);
  const int64_t batch = std::stoll(argv[2]), batches = std::stoll(argv[3]);
  auto train = dt::data::read_cifar10(argv[1], dt::data::Split::Train);
  dt::data::LoaderOptions o;
  o.augment.mode = dt::data::parse_augment_mode(argc > 4 ? argv[4] : "seed");
  o.shard.batch_per_rank = batch;
  o.prefetch = false;
  dt::data::TrainLoader loader(train, o);
  for (int i = 0; i < 3; ++i) loader.next();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  int64_t images = 0;
  for (int64_t i = 0; i < batches; ++i) images += loader.next().images.size(0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"loader\": \"dist_train\", \"batch\": %lld, \"images_per_s\": %.1f}\n",
              (long long)batch, images / s);
  return 0;
}
