// Weight files as typed byte views, with every field validated before use:
// safetensors (memory-mapped header + data) and PyTorch's `torch.save` zip
// checkpoints (`.pth`, read by a restricted pickle machine, see pth.cpp),
// GGUF (llama.cpp's format: metadata, tensors in ggml's block types, see
// gguf.cpp), plus sharded checkpoints described by an index JSON, and the atomic
// safetensors writer. No torch here: see weights.h for at::Tensor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kino {

// Element types of stored tensors; the Q* ones are ggml's block
// quantisations (GGUF files), see quant/ggml_blocks.h.
enum class DType {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
};

// Bytes per element; 0 for the block types (their size is per block).
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // the safetensors (or ggml) spelling, e.g. "BF16", "Q4_K"
bool is_block_type(DType dtype);
bool is_fp8(DType dtype);  // F8_E4M3, F8_E5M2
// The type spelled `name` (dtype_name's spelling), if any.
std::optional<DType> dtype_named(const std::string& name);
// Whether weights of this type stay in their stored encoding on the device
// (block types and fp8): they are decoded right before use.
bool is_quantised(DType dtype);
// Whether the values are real numbers (floating, fp8 or block-quantised).
bool is_floating(DType dtype);

// A tensor inside a file: its bytes are borrowed from the file's bytes.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// The bytes of a file: a read-only private mapping of a file on disk, or a
// buffer in memory (tests and fuzzing), released when the last user goes.
class FileBytes {
 public:
  explicit FileBytes(const std::string& path);
  explicit FileBytes(std::vector<uint8_t> bytes);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::vector<uint8_t> owned_;
};

// One weight file's tensor table.
//  - safetensors: the whole header is validated (bounded length, JSON object,
//    known dtypes, non-negative shapes, offsets inside the data section, byte
//    length == numel * dtype size, no overlapping tensors);
//  - `.pth` (recognised by its zip signature): the zip directory (zip64
//    included) is bounds-checked, data.pkl is run by a pickle machine that
//    knows only what a state_dict holds (no code is ever executed), and every
//    tensor must be a contiguous view inside its storage record;
//  - GGUF (by its magic or a `.gguf` name): version, counts, string and
//    array lengths, dimensions, known ggml types, aligned offsets and every
//    tensor's bytes inside the file are checked before anything is kept.
class TensorFile {
 public:
  static TensorFile open(const std::string& path);
  // The same from bytes in memory; `name` stands for the path in errors.
  static TensorFile parse(const std::string& name, std::shared_ptr<const FileBytes> bytes);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Used by the format readers: takes the tensors read from `bytes` and
  // refuses duplicate names.
  TensorFile(std::string path, std::shared_ptr<const FileBytes> bytes, std::vector<TensorView> tensors,
             std::map<std::string, std::string> metadata);

 private:
  std::string path_;
  std::shared_ptr<const FileBytes> bytes_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The format readers behind TensorFile::parse.
TensorFile read_safetensors(const std::string& name, std::shared_ptr<const FileBytes> bytes);
TensorFile read_pth(const std::string& name, std::shared_ptr<const FileBytes> bytes);
TensorFile read_gguf(const std::string& name, std::shared_ptr<const FileBytes> bytes);

// Several files seen as one name -> tensor table: a single weight file, or a
// sharded checkpoint's `*.safetensors.index.json` (its "weight_map" names the
// shard of every tensor; shard paths are relative to the index).
class TensorSet {
 public:
  static TensorSet open(const std::string& path);

  const TensorView* find(const std::string& name) const;
  // The file a tensor came from (for error messages).
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<TensorFile> files_;
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
