// Arbitrary bytes as a .safetensors file; every tensor view is read in full
// so that a view outside the buffer is caught by AddressSanitizer.
#include "fuzz_tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kino::fuzz::read_all(data, size, kino::read_safetensors);
  return 0;
}
