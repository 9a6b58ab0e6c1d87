// Decoding with tensor operations, for devices without kino's own loop (the
// GPU): the same float32 arithmetic, in the same order, as quant/blocks.cpp
// (and gguf-py's dequantize_blocks, whose reshapes these follow), so every
// device gives the same bits.
#include <torch/version.h>

#include "kino/error.h"
#include "quant/blocks.h"
#include "quant/packed.h"

namespace kino {

namespace {

struct Blocks {
  at::Tensor b;  // uint8 [n, block bytes]

  at::Tensor half(int64_t at) const { return b.narrow(1, at, 2).contiguous().view(at::kHalf).to(at::kFloat); }  // [n, 1]
  at::Tensor ints(int64_t at, int64_t len) const { return b.narrow(1, at, len).to(at::kInt); }
  at::Tensor shifts(std::vector<int32_t> s, std::vector<int64_t> shape) const {
    return at::tensor(s, at::TensorOptions(at::kInt)).to(b.device()).view(shape);
  }
  int64_t n() const { return b.size(0); }
};

at::Tensor rshift(const at::Tensor& x, const at::Tensor& s) { return at::__rshift__(x, s); }
at::Tensor mask(const at::Tensor& x, int64_t m) { return at::bitwise_and(x, m); }

// The four 2-bit fields of each byte, low first: [n, k, 32] -> [n, k, 4, 32].
at::Tensor crumbs(const Blocks& B, const at::Tensor& q) {
  return mask(rshift(q.unsqueeze(2), B.shifts({0, 2, 4, 6}, {1, 1, 4, 1})), 3);
}
// Bit i of each byte for i = 0..7: [n, k, m] -> [n, k, 8, m].
at::Tensor bits(const Blocks& B, const at::Tensor& q) {
  return mask(rshift(q.unsqueeze(2), B.shifts({0, 1, 2, 3, 4, 5, 6, 7}, {1, 1, 8, 1})), 1);
}
// Both nibbles, low first: [n, k, m] -> [n, k, 2, m].
at::Tensor nibbles(const Blocks& B, const at::Tensor& q) {
  return mask(rshift(q.unsqueeze(2), B.shifts({0, 4}, {1, 1, 2, 1})), 0xF);
}

// Q4_K / Q5_K's eight 6-bit scales and mins (get_scale_min_k4).
std::pair<at::Tensor, at::Tensor> scale_min(const at::Tensor& s) {  // [n, 12] int
  const at::Tensor d = s.narrow(1, 0, 4), m = s.narrow(1, 4, 4), md = s.narrow(1, 8, 4);
  const at::Tensor sc = at::cat({mask(d, 63), at::bitwise_or(mask(md, 0xF), mask(at::__rshift__(d, 2), 0x30))}, 1);
  const at::Tensor mn = at::cat({mask(m, 63), at::bitwise_or(at::__rshift__(md, 4), mask(at::__rshift__(m, 2), 0x30))}, 1);
  return {sc, mn};
}

at::Tensor decode_blocks(DType type, const Blocks& B) {
  const int64_t n = B.n();
  auto f = [](const at::Tensor& t) { return t.to(at::kFloat); };
  switch (type) {
    case DType::Q8_0: return f(B.b.narrow(1, 2, 32).contiguous().view(at::kChar)) * B.half(0);
    case DType::Q4_0:
    case DType::Q4_1: {
      const bool with_min = type == DType::Q4_1;
      const at::Tensor q = nibbles(B, B.ints(with_min ? 4 : 2, 16).unsqueeze(1)).reshape({n, 32});
      return with_min ? f(q) * B.half(0) + B.half(2) : f(q - 8) * B.half(0);
    }
    case DType::Q5_0:
    case DType::Q5_1: {
      const bool with_min = type == DType::Q5_1;
      const int64_t at = with_min ? 4 : 2;
      const at::Tensor high = bits(B, B.ints(at, 4).unsqueeze(2)).reshape({n, 32});
      const at::Tensor low = nibbles(B, B.ints(at + 4, 16).unsqueeze(1)).reshape({n, 32});
      const at::Tensor q = at::bitwise_or(low, at::__lshift__(high, 4));
      return with_min ? f(q) * B.half(0) + B.half(2) : f(q - 16) * B.half(0);
    }
    case DType::Q2_K: {
      const at::Tensor sc = B.ints(0, 16);
      const at::Tensor dl = (B.half(80) * f(mask(sc, 0xF))).unsqueeze(2), ml = (B.half(82) * f(at::__rshift__(sc, 4))).unsqueeze(2);
      const at::Tensor q = crumbs(B, B.ints(16, 64).view({n, 2, 32})).reshape({n, 16, 16});
      return (dl * f(q) - ml).reshape({n, 256});
    }
    case DType::Q3_K: {
      const at::Tensor s = B.ints(96, 12);
      const at::Tensor low = mask(rshift(s.narrow(1, 0, 8).unsqueeze(1), B.shifts({0, 4}, {1, 2, 1})), 0xF).reshape({n, 16});
      const at::Tensor high = mask(rshift(s.narrow(1, 8, 4).unsqueeze(1), B.shifts({0, 2, 4, 6}, {1, 4, 1})), 3).reshape({n, 16});
      const at::Tensor dl = (B.half(108) * f(at::bitwise_or(low, at::__lshift__(high, 4)) - 32)).unsqueeze(2);
      const at::Tensor ql = crumbs(B, B.ints(32, 64).view({n, 2, 32})).reshape({n, 16, 16});
      const at::Tensor qh = at::bitwise_xor(bits(B, B.ints(0, 32).view({n, 1, 32})).reshape({n, 16, 16}), 1);
      return (dl * f(ql - at::__lshift__(qh, 2))).reshape({n, 256});
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const auto [sc, mn] = scale_min(B.ints(4, 12));
      const at::Tensor d = (B.half(0) * f(sc)).unsqueeze(2), dm = (B.half(2) * f(mn)).unsqueeze(2);
      const bool five = type == DType::Q5_K;
      at::Tensor q = nibbles(B, B.ints(five ? 48 : 16, 128).view({n, 4, 32})).reshape({n, 8, 32});
      if (five) q = at::bitwise_or(q, at::__lshift__(bits(B, B.ints(16, 32).view({n, 1, 32})).reshape({n, 8, 32}), 4));
      return (d * f(q) - dm).reshape({n, 256});
    }
    case DType::Q6_K: {
      const at::Tensor d = (B.half(208) * f(B.b.narrow(1, 192, 16).contiguous().view(at::kChar))).unsqueeze(2);
      const at::Tensor ql = nibbles(B, B.ints(0, 128).view({n, 2, 64})).reshape({n, 8, 32});
      const at::Tensor qh = crumbs(B, B.ints(128, 64).view({n, 2, 32})).reshape({n, 8, 32});
      const at::Tensor q = (at::bitwise_or(ql, at::__lshift__(qh, 4)) - 32).reshape({n, 16, 16});
      return (d * f(q)).reshape({n, 256});
    }
    default: throw Error(concat("no tensor decoding for ", dtype_name(type)));
  }
}

// fp8 codes through a 256-entry table (libtorch 2.x has the dtypes).
at::Tensor decode_fp8(DType type, const at::Tensor& bytes) {
  const bool e4m3 = type == DType::F8_E4M3;
#if TORCH_VERSION_MAJOR >= 2
  return bytes.view(e4m3 ? at::kFloat8_e4m3fn : at::kFloat8_e5m2).to(at::kFloat);
#else
  std::vector<float> table(256);
  for (int c = 0; c < 256; ++c) table[static_cast<size_t>(c)] = quant::fp8_to_float(static_cast<uint8_t>(c), e4m3);
  const at::Tensor t = at::tensor(table).to(bytes.device());
  return t.index_select(0, bytes.reshape({-1}).to(at::kInt)).view(bytes.sizes());
#endif
}

}  // namespace

at::Tensor decode_with_tensor_ops(DType type, const at::Tensor& bytes, int64_t cols) {
  const int64_t rows = bytes.size(0);
  if (is_fp8(type)) return decode_fp8(type, bytes.contiguous());
  const quant::BlockFormat fmt = quant::block_format(type);
  if (!is_block_type(type)) throw Error(concat("no tensor decoding for ", dtype_name(type)));
  return decode_blocks(type, Blocks{bytes.contiguous().view({-1, fmt.bytes})}).view({rows, cols});
}

}  // namespace kino
