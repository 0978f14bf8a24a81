#include "trainer/checkpoint/checkpoint_writer.h"

#include <spdlog/spdlog.h>
#include "trainer/checkpoint/atomic_file.h"

namespace dt::trainer {

CheckpointWriter::~CheckpointWriter() {
  try {
    wait();
  } catch (const std::exception& e) {
    spdlog::error("checkpoint write failed: {}", e.what());
  }
}

void CheckpointWriter::write(std::vector<char> bytes, std::vector<std::string> paths,
                             std::function<void()> after) {
  wait();
  pending_ = std::async(std::launch::async,
                        [bytes = std::move(bytes), paths = std::move(paths), after = std::move(after)] {
                          for (const auto& path : paths) write_file_atomically(path, bytes);
                          if (after) after();
                        });
}

void CheckpointWriter::wait() {
  if (!pending_.valid()) return;
  auto done = std::move(pending_);  // invalid from here on, even if get() throws
  done.get();
}

}  // namespace dt::trainer
