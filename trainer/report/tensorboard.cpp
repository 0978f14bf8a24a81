#include "trainer/report/tensorboard.h"

#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include "trainer/report/errors.h"

namespace dt::trainer {
namespace {

void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(char(v | 0x80));
    v >>= 7;
  }
  s.push_back(char(v));
}

template <typename T>
void put_fixed(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only, as TFRecord expects
  s.append(b, sizeof(T));
}

void put_bytes(std::string& s, uint32_t field, const std::string& bytes) {
  put_varint(s, (field << 3) | 2);
  put_varint(s, bytes.size());
  s += bytes;
}

double wall_time() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3;
//         Summary summary = 5; } }
std::string event_header(int64_t step) {
  std::string e;
  put_varint(e, (1 << 3) | 1);
  put_fixed(e, wall_time());
  put_varint(e, (2 << 3) | 0);
  put_varint(e, uint64_t(step));
  return e;
}

uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static uint32_t table[256] = {0};
  static bool ready = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)ready;
  uint32_t crc = 0xffffffffu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::create_directories(dir, ec) && ec) {
    throw OutputError(dir + ": cannot create the folder: " + ec.message());
  }
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  path_ = (std::filesystem::path(dir) /
           ("events.out.tfevents." + std::to_string(int64_t(wall_time())) + "." + host))
              .string();
  out_.open(path_, std::ios::binary);
  if (!out_) throw OutputError(path_ + ": cannot create: " + std::strerror(errno));
  std::string e = event_header(0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
}

void TensorBoardWriter::add_scalar(const std::string& tag, float value, int64_t step) {
  std::string v;  // Summary.Value { string tag = 1; float simple_value = 2; }
  put_bytes(v, 1, tag);
  put_varint(v, (2 << 3) | 5);
  put_fixed(v, value);
  std::string summary;  // Summary { repeated Value value = 1; }
  put_bytes(summary, 1, v);
  std::string e = event_header(step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void TensorBoardWriter::flush() {
  out_.flush();
  if (!out_) throw OutputError(path_ + ": cannot write: " + std::strerror(errno));
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string r;
  put_fixed(r, uint64_t(data.size()));
  put_fixed(r, masked(crc32c(r.data(), 8)));
  r += data;
  put_fixed(r, masked(crc32c(data.data(), data.size())));
  out_.write(r.data(), std::streamsize(r.size()));
}

}  // namespace dt::trainer
