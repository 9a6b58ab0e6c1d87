// Stored number formats decoded to float32 on the CPU, torch-free: ggml's
// block quantisations (Q4_0 ... Q6_K, as gguf-py's `quants.dequantize`
// computes them, bit for bit), fp8 (e4m3fn, e5m2) and the plain widths.
#pragma once
#include <cstdint>

#include "loading/tensor_file.h"

namespace kino::quant {

// How values are grouped: `values` per block of `bytes` (1 and the element
// size for unblocked types).
struct BlockFormat {
  int64_t values = 1, bytes = 0;
};
BlockFormat block_format(DType type);

// Bytes of a row of `n` values; kino::Error if `n` is not a whole number
// of blocks or the type has no numeric decoding.
int64_t row_bytes(DType type, int64_t n);

// Decodes `n` values (whole blocks) of `type` from `src` into `dst`.
void decode(DType type, const uint8_t* src, int64_t n, float* dst);

// IEEE half and bfloat16 bit patterns as float (exact).
float half_to_float(uint16_t h);
inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
// One fp8 code as float: float8_e4m3fn (bias 7, no infinities, S.1111.111
// is NaN) or float8_e5m2 (bias 15, IEEE infinities and NaNs).
float fp8_to_float(uint8_t code, bool e4m3);

}  // namespace kino::quant
