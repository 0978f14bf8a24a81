// Why a path that should name a readable file does not: for the one-line errors of the data
// reader and the checkpoint loader ("a folder", "a symbolic link to a missing file", ...), which
// a bare "not found" would misdescribe.
#pragma once
#include <filesystem>
#include <string>

namespace dt::data {

// "" when `path` is a regular file (or a link to one); else what it is instead.
inline std::string regular_file_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec, link_ec;
  const auto target = fs::status(path, ec);
  if (target.type() == fs::file_type::regular) return "";
  const auto link = fs::symlink_status(path, link_ec);
  if (link.type() == fs::file_type::not_found) return "no such file";
  if (link.type() == fs::file_type::symlink && target.type() == fs::file_type::not_found) {
    return "a symbolic link to a missing file";
  }
  if (target.type() == fs::file_type::directory) return "a folder, not a file";
  if (ec) return ec.message();  // a loop of symbolic links, a folder we may not enter
  return "not a regular file (a device, FIFO or socket)";
}

}  // namespace dt::data
