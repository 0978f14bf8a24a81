#include "data/cifar10.h"

#include <filesystem>
#include <fstream>
#include <vector>
#include "data/errors.h"
#include "data/regular_file.h"

namespace dt::data {
namespace {

std::vector<std::string> split_files(Split split) {
  if (split == Split::Test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

}  // namespace

Dataset parse_cifar10_records(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size == 0) throw DataError(name + ": empty file, expected CIFAR-10 records of 3073 bytes");
  if (size % kCifarRecordBytes != 0) {
    throw DataError(name + ": size " + std::to_string(size) +
                    " bytes is not a multiple of the 3073-byte CIFAR-10 record (truncated or not "
                    "a CIFAR-10 binary file?)");
  }
  const int64_t n = static_cast<int64_t>(size) / kCifarRecordBytes;
  const int64_t pixels = kCifarRecordBytes - 1;
  auto images = torch::empty({n, 3, kCifarImageSize, kCifarImageSize}, torch::kUInt8);
  auto labels = torch::empty({n}, torch::kInt64);
  uint8_t* img = images.data_ptr<uint8_t>();
  int64_t* lab = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = bytes + i * kCifarRecordBytes;
    if (rec[0] >= kCifarClasses) {
      throw DataError(name + ": record " + std::to_string(i) + " has label " +
                      std::to_string(rec[0]) + ", outside 0..9");
    }
    lab[i] = rec[0];
    std::memcpy(img + i * pixels, rec + 1, pixels);
  }
  return {images, labels, name};
}

Dataset read_cifar10_file(const std::string& path) {
  if (const auto problem = regular_file_problem(path); !problem.empty()) {
    throw DataError(path + (problem == "no such file" ? ": CIFAR-10 file not found"
                                                      : ": cannot read CIFAR-10 records from it: " + problem));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open for reading");
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(path + ": cannot read size: " + ec.message());
  std::vector<uint8_t> buf(bytes);
  if (!buf.empty() && !in.read(reinterpret_cast<char*>(buf.data()), buf.size())) {
    throw DataError(path + ": read failed");
  }
  return parse_cifar10_records(buf.data(), buf.size(), path);
}

Dataset read_cifar10(const std::string& dir, Split split) {
  std::vector<Dataset> parts;
  for (const auto& f : split_files(split)) {
    parts.push_back(read_cifar10_file((std::filesystem::path(dir) / f).string()));
  }
  // After every file parsed, so that a malformed file is named before a merely short one. A file
  // cut at a record boundary parses, and would otherwise train on a silently smaller dataset.
  std::vector<torch::Tensor> images, labels;
  for (const auto& part : parts) {
    if (part.size() != kCifarRecordsPerFile) {
      throw DataError(part.source + ": " + std::to_string(part.size()) +
                      " records, the CIFAR-10 binary layout has " +
                      std::to_string(kCifarRecordsPerFile) + " in each file (cut short?)");
    }
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  return {torch::cat(images), torch::cat(labels), dir};
}

bool cifar10_present(const std::string& dir, bool test_only) {
  std::error_code ec;
  for (auto split : {Split::Train, Split::Test}) {
    if (test_only && split == Split::Train) continue;
    for (const auto& f : split_files(split)) {
      if (!std::filesystem::exists(std::filesystem::path(dir) / f, ec)) return false;
    }
  }
  return true;
}

}  // namespace dt::data
