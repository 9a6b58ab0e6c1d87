// Shared by the weight-file fuzz targets.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kino/error.h"
#include "loading/tensor_file.h"

namespace kino::fuzz {

using Reader = TensorFile (*)(const std::string&, std::shared_ptr<const FileBytes>);

inline void read_all(const uint8_t* data, size_t size, Reader reader) {
  auto bytes = std::make_shared<const FileBytes>(std::vector<uint8_t>(data, data + size));
  try {
    const TensorFile f = reader("fuzz-input", bytes);
    volatile uint8_t sum = 0;
    for (const TensorView& t : f.tensors()) {
      if (!is_block_type(t.dtype) && static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) != t.nbytes) __builtin_trap();
      for (size_t i = 0; i < t.nbytes; ++i) sum = static_cast<uint8_t>(sum + t.data[i]);
    }
  } catch (const Error&) {
  }
}

}  // namespace kino::fuzz
