// kino's error type: one line that names the file, field or value at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace kino {

// Thrown for every user-facing failure (bad input, bad model file, I/O).
// The CLI prints what() on one line and exits with a non-zero code.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when the user asked to stop (SIGINT/SIGTERM); exit code 130.
class Interrupted : public Error {
 public:
  Interrupted() : Error("interrupted") {}
};

// printf-free helper: concatenates its arguments with operator<<.
template <typename... Args>
std::string concat(const Args&... args);

}  // namespace kino

#include <sstream>
template <typename... Args>
std::string kino::concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
