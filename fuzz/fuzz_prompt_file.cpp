// Arbitrary bytes as a prompt file (plain text or JSON Lines). A bad line
// must become an item with an error, never an exception.
#include <sstream>
#include <string>

#include "kino/error.h"
#include "kino/prompt_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  const auto items = kino::parse_prompt_file(in, "fuzz-input");
  for (const auto& item : items)
    if (item.error.empty() && item.request.prompt.empty()) __builtin_trap();  // an item is a prompt or an error
  return 0;
}
