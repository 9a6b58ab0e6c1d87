#include "kino/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "kino/error.h"

namespace fs = std::filesystem;

namespace kino {

namespace {
std::string folder_of(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
}  // namespace

namespace {

// What an output may replace: nothing, or a regular file (a rename over a
// device, FIFO or socket would replace the node itself).
void check_replaceable(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st) && !fs::is_symlink(st))
    throw Error(concat(path, " exists and is not a regular file (a folder, device, FIFO or socket): kino replaces files only; "
                             "-o - writes to stdout"));
}

}  // namespace

void check_output_folder(const std::string& path) {
  check_replaceable(path);
  // The temporary name (".NAME.kino-tmp-PID-N") must fit the file system's
  // name limit too.
  constexpr size_t kNameMax = 255, kTempExtra = 40;
  if (fs::path(path).filename().string().size() + kTempExtra > kNameMax)
    throw Error(concat("output file name is too long (", fs::path(path).filename().string().size(), " bytes; at most ",
                       kNameMax - kTempExtra, "): ", path));
  std::string dir = folder_of(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(concat("output folder does not exist: ", dir));
  // Create and remove a file: access(W_OK) says yes to root on folders that
  // still refuse new files (read-only mounts, /proc).
  std::string probe = (fs::path(dir) / ".kino-write-test-XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) throw Error(concat("output folder is not writable: ", dir, " (", std::strerror(errno), ")"));
  ::close(fd);
  std::remove(probe.c_str());
}

AtomicFile::AtomicFile(std::string final_path) : final_path_(std::move(final_path)) {
  static std::atomic<unsigned> counter{0};
  fs::path p(final_path_);
  fs::path tmp = p.parent_path() / concat(".", p.filename().string(), ".kino-tmp-", getpid(), "-", counter++);
  temp_path_ = tmp.string();
}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFile::commit() {
  int fd = ::open(temp_path_.c_str(), O_RDONLY);
  if (fd < 0) throw Error(concat("cannot reopen ", temp_path_, ": ", std::strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(concat("cannot write ", final_path_, ": ", std::strerror(err)));
  check_replaceable(final_path_);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    throw Error(concat("cannot create ", final_path_, ": ", std::strerror(errno)));
  committed_ = true;
}

}  // namespace kino
