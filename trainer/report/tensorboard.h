// A TensorBoard event-file writer for scalars (TFRecord framing of Event protos, written by hand:
// no protobuf or TensorFlow dependency). `tensorboard --logdir DIR` reads the files it writes.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

namespace dt::trainer {

class TensorBoardWriter {
 public:
  // Creates DIR/events.out.tfevents.<time>.<host>.
  explicit TensorBoardWriter(const std::string& dir);
  void add_scalar(const std::string& tag, float value, int64_t step);
  // Throws OutputError if what was written so far did not reach the file.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::ofstream out_;
};

// CRC-32C (Castagnoli), as TFRecord framing needs; exposed for tests.
uint32_t crc32c(const void* data, size_t size);

}  // namespace dt::trainer
