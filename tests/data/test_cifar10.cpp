// data/cifar10: every validation error names the file (and record); real data reads whole.
#include <gtest/gtest.h>
#include <fstream>
#include "data/cifar10.h"
#include "data/errors.h"
#include "data/fingerprint.h"
#include "data/synthetic.h"
#include "tests/test_util.h"

using namespace dt;
using dt::test_util::TempDir;

namespace {

// Writes `n` random records; returns their labels and pixels for comparison.
std::vector<uint8_t> random_records(int64_t n, uint64_t seed) {
  std::vector<uint8_t> bytes(n * data::kCifarRecordBytes);
  auto gen = at::detail::createCPUGenerator(seed);
  auto t = torch::randint(0, 256, {int64_t(bytes.size())}, gen, torch::kUInt8);
  std::memcpy(bytes.data(), t.data_ptr<uint8_t>(), bytes.size());
  for (int64_t i = 0; i < n; ++i) bytes[i * data::kCifarRecordBytes] %= 10;
  return bytes;
}

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const data::DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Cifar10Reader, ParsesRecordsExactly) {
  TempDir dir;
  auto bytes = random_records(7, 1);
  write(dir / "x.bin", bytes);
  auto ds = data::read_cifar10_file(dir / "x.bin");
  ASSERT_EQ(ds.size(), 7);
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{7, 3, 32, 32}));
  for (int64_t i = 0; i < 7; ++i) {
    const uint8_t* rec = bytes.data() + i * data::kCifarRecordBytes;
    EXPECT_EQ(ds.labels[i].item<int64_t>(), rec[0]);
    // Planes are R, G, B, each row-major 32x32.
    EXPECT_EQ(ds.images[i][0][0][0].item<uint8_t>(), rec[1]);
    EXPECT_EQ(ds.images[i][1][0][0].item<uint8_t>(), rec[1 + 1024]);
    EXPECT_EQ(ds.images[i][2][31][31].item<uint8_t>(), rec[3072]);
    EXPECT_EQ(ds.images[i][0][1][5].item<uint8_t>(), rec[1 + 32 + 5]);
  }
}

TEST(Cifar10Reader, MissingFileNamesIt) {
  TempDir dir;
  auto msg = error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Train); });
  EXPECT_NE(msg.find("data_batch_1.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
}

TEST(Cifar10Reader, TruncatedFileIsRejected) {
  TempDir dir;
  auto bytes = random_records(3, 2);
  bytes.resize(bytes.size() - 100);
  write(dir / "test_batch.bin", bytes);
  auto msg = error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Test); });
  EXPECT_NE(msg.find("test_batch.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a multiple of the 3073-byte"), std::string::npos) << msg;
}

TEST(Cifar10Reader, EmptyFileIsRejected) {
  TempDir dir;
  write(dir / "test_batch.bin", {});
  EXPECT_NE(error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Test); }), "");
}

TEST(Cifar10Reader, LabelOutOfRangeNamesRecord) {
  TempDir dir;
  auto bytes = random_records(5, 3);
  bytes[3 * data::kCifarRecordBytes] = 10;
  write(dir / "test_batch.bin", bytes);
  auto msg = error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Test); });
  EXPECT_NE(msg.find("record 3 has label 10"), std::string::npos) << msg;
}

TEST(Cifar10Reader, OneBadTrainFileAmongGoodOnes) {
  TempDir dir;
  for (int i = 1; i <= 5; ++i) write(dir / ("data_batch_" + std::to_string(i) + ".bin"), random_records(4, i));
  auto bad = random_records(4, 9);
  bad.pop_back();
  write(dir / "data_batch_4.bin", bad);
  auto msg = error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Train); });
  EXPECT_NE(msg.find("data_batch_4.bin"), std::string::npos) << msg;
}

TEST(Cifar10Reader, RealDataIsComplete) {
  DT_REQUIRE_CIFAR();
  auto train = data::read_cifar10(test_util::cifar_dir(), data::Split::Train);
  auto test = data::read_cifar10(test_util::cifar_dir(), data::Split::Test);
  EXPECT_EQ(train.size(), 50000);
  EXPECT_EQ(test.size(), 10000);
  // Balanced classes: 5000 / 1000 of each.
  auto counts = torch::bincount(train.labels);
  EXPECT_TRUE(torch::all(counts == 5000).item<bool>());
  EXPECT_TRUE(torch::all(torch::bincount(test.labels) == 1000).item<bool>());
}

TEST(Cifar10Reader, FileCutAtARecordBoundaryIsRejected) {
  TempDir dir;
  for (int i = 1; i <= 5; ++i) write(dir / ("data_batch_" + std::to_string(i) + ".bin"), random_records(3, i));
  auto msg = error_of([&] { data::read_cifar10(dir.path().string(), data::Split::Train); });
  EXPECT_NE(msg.find("data_batch_1.bin: 3 records"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10000"), std::string::npos) << msg;
}

// The fingerprint ranks compare: equal for equal data, different after any one pixel or label
// changes, or when the last image is missing.
TEST(DatasetFingerprint, ChangesWithAnyPixelOrLabel) {
  const auto a = data::make_synthetic(300, 4), b = data::make_synthetic(300, 4);
  const uint64_t f = data::fingerprint(a);
  EXPECT_EQ(data::fingerprint(b), f);
  EXPECT_NE(data::fingerprint(data::make_synthetic(300, 5)), f);
  auto pixel = data::Dataset{a.images.clone(), a.labels.clone(), ""};
  pixel.images[217][2][31][30] += 1;  // one pixel, late in the buffer
  EXPECT_NE(data::fingerprint(pixel), f);
  auto label = data::Dataset{a.images.clone(), a.labels.clone(), ""};
  label.labels[299] = (label.labels[299].item<int64_t>() + 1) % 10;
  EXPECT_NE(data::fingerprint(label), f);
  auto fewer = data::Dataset{a.images.narrow(0, 0, 299).contiguous(), a.labels.narrow(0, 0, 299).contiguous(), ""};
  EXPECT_NE(data::fingerprint(fewer), f);
}
