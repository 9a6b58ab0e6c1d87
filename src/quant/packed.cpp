#include "quant/packed.h"

#include <ATen/Parallel.h>

#include <array>
#include <cmath>
#include <tuple>

#include "kino/error.h"
#include "quant/blocks.h"

namespace kino {

PackedMatrix::PackedMatrix(DType type, int64_t cols, at::Tensor bytes, float scale, at::ScalarType dtype)
    : type_(type), cols_(cols), bytes_(std::move(bytes)), scale_(scale), dtype_(dtype) {
  if (bytes_.dim() != 2 || bytes_.scalar_type() != at::kByte || bytes_.size(1) != quant::row_bytes(type, cols))
    throw Error(concat("packed ", dtype_name(type), " matrix: ", bytes_.size(1), " bytes per row for ", cols, " columns"));
}

at::Tensor PackedMatrix::decode(const at::Tensor& bytes) const {
  at::Tensor w = bytes.is_cpu() ? decode_on_cpu(type_, bytes, cols_) : decode_with_tensor_ops(type_, bytes, cols_);
  if (scale_ != 1.0f) w.mul_(scale_);
  return w.to(dtype_);
}

at::Tensor PackedMatrix::dequantize() const { return decode(bytes_); }

at::Tensor PackedMatrix::rows(const at::Tensor& ids) const {
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(cols_);
  return decode(bytes_.index_select(0, ids.reshape({-1}).to(bytes_.device(), at::kLong))).view(shape);
}

void PackedMatrix::to(const at::TensorOptions& options, bool non_blocking) {
  if (options.has_device()) bytes_ = bytes_.to(at::TensorOptions().device(options.device()), non_blocking);
  if (options.has_dtype()) dtype_ = options.dtype().toScalarType();
}

namespace {

// Little-endian fp16 bytes of x.
std::array<uint8_t, 2> half_bytes(double x) {
  const at::Half h(static_cast<float>(x));
  return {static_cast<uint8_t>(h.x & 0xFF), static_cast<uint8_t>(h.x >> 8)};
}

}  // namespace

PackedMatrix PackedMatrix::random(DType type, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  const quant::BlockFormat f = quant::block_format(type);
  const int64_t blocks = rows * quant::row_bytes(type, cols) / f.bytes;
  const at::TensorOptions bytes_options = at::TensorOptions(at::kByte).device(options.device());
  at::Tensor b = at::randint(0, 256, {blocks, f.bytes}, bytes_options);
  const double s = 1 / std::sqrt(static_cast<double>(cols));
  // Fields as (offset, fp16 value) and (offset, length, byte): d, the
  // offset m (or dmin), and sub-block scales of 1 (Q2_K..Q6_K).
  std::vector<std::pair<int64_t, double>> halves;
  std::vector<std::tuple<int64_t, int64_t, int>> bytes;
  switch (type) {
    case DType::Q8_0: halves = {{0, s / 73.9}}; break;        // q uniform in [-128, 127]
    case DType::Q4_0: halves = {{0, s / 4.6}}; break;         // q - 8 in [-8, 7]
    case DType::Q4_1: halves = {{0, s / 4.6}, {2, -7.5 * s / 4.6}}; break;
    case DType::Q5_0: halves = {{0, s / 9.2}}; break;
    case DType::Q5_1: halves = {{0, s / 9.2}, {2, -15.5 * s / 9.2}}; break;
    case DType::Q2_K: halves = {{80, s / 1.12}, {82, 1.5 * s / 1.12}}; bytes = {{0, 16, 0x11}}; break;
    case DType::Q3_K: halves = {{108, s / 2.3}}; bytes = {{96, 8, 0x11}, {104, 4, 0xAA}}; break;  // scales 33 - 32 = 1
    case DType::Q4_K: halves = {{0, s / 4.6}, {2, 7.5 * s / 4.6}}; bytes = {{4, 8, 1}, {12, 4, 0x11}}; break;
    case DType::Q5_K: halves = {{0, s / 9.2}, {2, 15.5 * s / 9.2}}; bytes = {{4, 8, 1}, {12, 4, 0x11}}; break;
    case DType::Q6_K: halves = {{208, s / 18.5}}; bytes = {{192, 16, 1}}; break;
    case DType::F8_E4M3:
    case DType::F8_E5M2: b = at::bitwise_and(b, 0xBF); break;  // exponent below its top half: finite, |v| < 2
    default: throw Error(concat("no random blocks of ", dtype_name(type)));
  }
  for (const auto& [at_byte, value] : halves) {
    const auto h = half_bytes(value);
    b.select(1, at_byte).fill_(h[0]);
    b.select(1, at_byte + 1).fill_(h[1]);
  }
  for (const auto& [at_byte, len, value] : bytes) b.narrow(1, at_byte, len).fill_(value);
  const float scale = f.bytes == 1 ? static_cast<float>(s / 0.6) : 1.0f;  // fp8: codes spread about 0.6
  return PackedMatrix(type, cols, b.view({rows, -1}), scale, options.dtype().toScalarType());
}

at::Tensor decode_on_cpu(DType type, const at::Tensor& bytes, int64_t cols) {
  const at::Tensor src = bytes.contiguous();
  const int64_t rows = src.size(0), row_bytes = src.size(1);
  at::Tensor out = at::empty({rows, cols}, at::kFloat);
  const uint8_t* in = src.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) quant::decode(type, in + r * row_bytes, cols, dst + r * cols);
  });
  return out;
}

}  // namespace kino
