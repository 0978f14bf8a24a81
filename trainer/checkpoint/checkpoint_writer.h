// Writes checkpoint files on a background thread, so that training goes on while they reach the
// disk (on the H200 machine, 2026-11-30, ResNet-9's two files per epoch took about 0.5 s: as long
// as the epoch's training, and 41% of a 64-epoch run's wall time while written in line).
// Contract:
//   - the caller takes the snapshot (checkpoint_bytes) on the training thread, so a file holds the
//     state at the call, whatever training does afterwards;
//   - one write in flight at most: write() first waits for the one before, so files land in call
//     order and one snapshot is held in memory;
//   - a failed write (disk full, folder removed) is rethrown as its CheckpointError by the next
//     write() or wait(), on the training thread: never lost, never thrown on the writer thread;
//   - each file is written atomically (write_file_atomically): a crash or kill mid-write leaves
//     the previous file, loadable;
//   - the job touches no tensor and no torch state: only bytes, files and `after`.
#pragma once
#include <functional>
#include <future>
#include <string>
#include <vector>

namespace dt::trainer {

class CheckpointWriter {
 public:
  CheckpointWriter() = default;
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // Waits for the write in flight (an error then is logged: a destructor cannot throw it).
  ~CheckpointWriter();

  // Writes `bytes` to each of `paths` in turn, then runs `after` (pruning old files, say).
  void write(std::vector<char> bytes, std::vector<std::string> paths,
             std::function<void()> after = {});
  // Returns once the write in flight, if any, is on disk; rethrows its error.
  void wait();

 private:
  std::future<void> pending_;
};

}  // namespace dt::trainer
