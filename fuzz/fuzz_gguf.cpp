// Arbitrary bytes as a GGUF file; every tensor view is read in full (and
// its blocks decoded) so that a view outside the buffer is caught by
// AddressSanitizer.
#include "fuzz_tensor_file.h"
#include "quant/blocks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kino::fuzz::read_all(data, size, kino::read_gguf);
  auto bytes = std::make_shared<const kino::FileBytes>(std::vector<uint8_t>(data, data + size));
  try {
    const kino::TensorFile f = kino::read_gguf("fuzz-input", bytes);
    for (const kino::TensorView& t : f.tensors()) {
      if (!kino::is_floating(t.dtype) || t.numel() > (1 << 20)) continue;
      std::vector<float> out(static_cast<size_t>(t.numel()));
      kino::quant::decode(t.dtype, t.data, t.numel(), out.data());
    }
  } catch (const kino::Error&) {
  }
  return 0;
}
