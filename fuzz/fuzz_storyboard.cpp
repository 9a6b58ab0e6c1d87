// Arbitrary bytes as a storyboard JSON file.
#include <string>

#include "kino/error.h"
#include "kino/prompt_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kino::parse_storyboard(std::string(reinterpret_cast<const char*>(data), size), "fuzz-input");
  } catch (const kino::Error&) {
  }
  return 0;
}
