// A weight matrix kept in its stored encoding (ggml blocks or fp8 with its
// scale) on the device, decoded to the compute dtype right before each
// matmul: the memory follows the file, not the run dtype (as llama.cpp and
// ComfyUI-GGUF keep a ggml type per tensor).
#pragma once
#include <ATen/ATen.h>

#include "loading/tensor_file.h"

namespace kino {

class PackedMatrix {
 public:
  // `bytes`: uint8 [rows, row bytes] of `type`, one row per output
  // feature; `scale` multiplies the decoded values (ComfyUI's scaled fp8).
  PackedMatrix(DType type, int64_t cols, at::Tensor bytes, float scale, at::ScalarType dtype);

  // [rows, cols] in dtype(), on the device of the bytes.
  at::Tensor dequantize() const;
  // Rows `ids` (int64, any shape) decoded: an embedding lookup [..., cols].
  at::Tensor rows(const at::Tensor& ids) const;

  DType type() const { return type_; }
  at::ScalarType dtype() const { return dtype_; }
  int64_t rows() const { return bytes_.size(0); }
  int64_t cols() const { return cols_; }
  at::Device device() const { return bytes_.device(); }
  int64_t stored_bytes() const { return bytes_.numel(); }

  // Random blocks of `type` for benchmarks, made on the device of
  // `options`: random codes, with the scale fields set so that the values
  // have about the spread of N(0, 1/cols) weights (no NaN or infinity).
  static PackedMatrix random(DType type, int64_t rows, int64_t cols, const at::TensorOptions& options);

  // The device of `options`, and its dtype (if given) as the compute dtype.
  void to(const at::TensorOptions& options, bool non_blocking = false);
  void pin_memory() { bytes_ = bytes_.pin_memory(); }

 private:
  at::Tensor decode(const at::Tensor& bytes) const;

  DType type_;
  int64_t cols_;
  at::Tensor bytes_;
  float scale_;
  at::ScalarType dtype_;
};

// The decoders behind dequantize(), one per device kind, exposed for the
// parity tests: `bytes` uint8 [rows, row bytes] -> float32 [rows, cols].
at::Tensor decode_on_cpu(DType type, const at::Tensor& bytes, int64_t cols);
at::Tensor decode_with_tensor_ops(DType type, const at::Tensor& bytes, int64_t cols);

}  // namespace kino
