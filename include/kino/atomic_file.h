// Output files appear whole or not at all: everything is written to a hidden
// temporary file in the destination folder and renamed into place on commit().
#pragma once
#include <string>

namespace kino {

class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  // fsyncs the temporary file and renames it over final_path.
  void commit();

 private:
  std::string final_path_;
  std::string temp_path_;
  bool committed_ = false;
};

// Throws kino::Error if `path`'s folder does not exist or is not writable.
void check_output_folder(const std::string& path);

}  // namespace kino
