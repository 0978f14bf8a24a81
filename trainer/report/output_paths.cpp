#include "trainer/report/output_paths.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include "trainer/config/errors.h"
#include "trainer/report/errors.h"

namespace dt::trainer {
namespace {

void require_writable_folder(const std::string& dir, const std::string& flag) {
  const std::filesystem::path folder = dir.empty() ? "." : dir;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw ConfigError(flag + " " + folder.string() + ": cannot create it: " + ec.message());
  // Permission bits say little (root passes them; a read-only mount or full disk does not):
  // create a file, write a byte (an empty file needs no space), remove it.
  const auto probe = folder / (".dist_train_probe." + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    throw ConfigError(flag + " " + folder.string() + ": cannot write in it: " +
                      std::strerror(errno));
  }
  const bool wrote = ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  ::unlink(probe.c_str());
  if (!wrote) {
    throw ConfigError(flag + " " + folder.string() + ": cannot write in it: " + std::strerror(error));
  }
}

}  // namespace

void write_output_file(const std::string& path, const std::string& text, const std::string& label) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) throw OutputError(label + ": cannot write: " + std::strerror(errno));
}

void prepare_output_paths(const Config& c) {
  require_writable_folder(c.checkpoint_dir, "--checkpoint-dir");
  require_writable_folder(c.log_dir, "--log-dir");
  if (!c.trace.empty()) {
    std::error_code ec;
    const auto name = std::filesystem::path(c.trace).filename();
    if (std::filesystem::is_directory(c.trace, ec) || name.empty() || name == "." || name == "..") {
      throw ConfigError("--trace " + c.trace + ": is a folder (give the trace file's path)");
    }
    require_writable_folder(std::filesystem::path(c.trace).parent_path().string(), "--trace");
  }
}

}  // namespace dt::trainer
