// Reader for the official CIFAR-10 binary layout (cifar-10-batches-bin).
//
// Each record is 3073 bytes: one label byte (0..9), then the 1024 red, 1024 green and 1024 blue
// bytes of a 32x32 image, row-major. Everything read is validated; any defect throws DataError
// naming the file (and the record), never a crash or a silently short dataset.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "data/dataset.h"

namespace dt::data {

constexpr int64_t kCifarImageSize = 32;
constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;
constexpr int64_t kCifarClasses = 10;
constexpr int64_t kCifarRecordsPerFile = 10000;  // in every file of the official layout

enum class Split { Train, Test };

// Parses records from memory; `name` labels errors. Used by the file reader and the fuzzer.
Dataset parse_cifar10_records(const uint8_t* bytes, size_t size, const std::string& name);

// Reads one .bin file.
Dataset read_cifar10_file(const std::string& path);

// Reads data_batch_1..5.bin (Train) or test_batch.bin (Test) from `dir`.
Dataset read_cifar10(const std::string& dir, Split split);

// True when `dir` holds every file of both splits (of the test split alone with `test_only`).
bool cifar10_present(const std::string& dir, bool test_only = false);

}  // namespace dt::data
