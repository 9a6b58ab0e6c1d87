// safetensors reading (memory-mapped, every header field validated) and
// writing (atomic), plus sharded checkpoints described by an index JSON.
// No torch here: tensors are typed byte views; see weights.h for at::Tensor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kino {

enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // the safetensors spelling, e.g. "BF16"

// A tensor inside a file: its bytes are borrowed from the mapping.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

class MappedFile;

// One .safetensors file. Opening validates the whole header: bounded length,
// JSON object, known dtypes, non-negative shapes, offsets inside the data
// section, byte length == numel * dtype size, no overlapping tensors.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Several files seen as one name -> tensor table: a single .safetensors, or a
// sharded checkpoint's `*.safetensors.index.json` (its "weight_map" names the
// shard of every tensor; shard paths are relative to the index).
class SafetensorsSet {
 public:
  static SafetensorsSet open(const std::string& path);

  const TensorView* find(const std::string& name) const;
  // The file a tensor came from (for error messages).
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
};

// A tensor to write; `data` must hold numel * dtype_size bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file atomically (temporary file in the same folder,
// fsync, rename). Tensors are laid out in name order, 8-byte aligned header.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace kino
