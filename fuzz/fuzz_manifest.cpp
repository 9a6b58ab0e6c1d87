// Arbitrary bytes as a kino.json manifest.
#include <string>

#include "kino/error.h"
#include "kino/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kino::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), "/nonexistent/kino.json");
  } catch (const kino::Error&) {
  }
  return 0;
}
