#include "quant/blocks.h"

#include <array>
#include <cmath>
#include <cstring>

#include "kino/error.h"

namespace kino::quant {

namespace {

constexpr int64_t QK = 32, QK_K = 256;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float f16(const uint8_t* p) { return half_to_float(u16(p)); }

// The block decoders follow ggml's dequantize_row_* (ggml-quants.c), whose
// arithmetic gguf-py's dequantize_blocks repeats: products and sums in
// float32, in the same order.

void q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = f16(b);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = static_cast<float>((b[2 + j] & 0x0F) - 8) * d;
    y[j + QK / 2] = static_cast<float>((b[2 + j] >> 4) - 8) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = f16(b), m = f16(b + 2);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = static_cast<float>(b[4 + j] & 0x0F) * d + m;
    y[j + QK / 2] = static_cast<float>(b[4 + j] >> 4) * d + m;
  }
}

// The fifth bits: qh (little-endian uint32) bit j belongs to value j.
uint32_t high_bits(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

void q5_0(const uint8_t* b, float* y) {  // d, qh[4], qs[16]
  const float d = f16(b);
  const uint32_t qh = high_bits(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < QK / 2; ++j) {
    const int hi0 = ((qh >> j) & 1) << 4, hi1 = ((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | hi0) - 16) * d;
    y[j + QK / 2] = static_cast<float>(((qs[j] >> 4) | hi1) - 16) * d;
  }
}

void q5_1(const uint8_t* b, float* y) {  // d, m, qh[4], qs[16]
  const float d = f16(b), m = f16(b + 2);
  const uint32_t qh = high_bits(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < QK / 2; ++j) {
    const int hi0 = ((qh >> j) & 1) << 4, hi1 = ((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>((qs[j] & 0x0F) | hi0) * d + m;
    y[j + QK / 2] = static_cast<float>((qs[j] >> 4) | hi1) * d + m;
  }
}

void q8_0(const uint8_t* b, float* y) {  // d, qs[32] (int8)
  const float d = f16(b);
  for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void q2_k(const uint8_t* b, float* y) {  // scales[16], qs[64], d, dmin
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = f16(b + 80), min = f16(b + 82);
  int is = 0;
  for (int n = 0; n < QK_K; n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2)
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
}

void q3_k(const uint8_t* b, float* y) {  // hmask[32], qs[64], scales[12], d
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const uint8_t* s = b + 96;
  const float d_all = f16(b + 108);
  // Sixteen 6-bit scales: low nibbles in s[0..7] (then their high nibbles),
  // the two high bits in s[8..11].
  int scales[16];
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
    const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = (low | high << 4) - 32;
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < QK_K; n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1))
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++]);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * half;
          *y++ = dl * static_cast<float>(((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
        }
      }
}

// get_scale_min_k4: the j-th 6-bit scale and min of Q4_K / Q5_K.
void scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K (d, dmin, scales[12], qs[128]) and Q5_K (the same with qh[32]
// before qs): value = d·sc · q - dmin·m per sub-block of 32.
void q45_k(const uint8_t* b, float* y, bool five) {
  const float d = f16(b), min = f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = five ? b + 48 : b + 16;
  int is = 0;
  for (int j = 0; j < QK_K; j += 64, ql += 32, is += 2) {
    int sc, m;
    scale_min(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
    scale_min(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
    const int bit = j / 32;  // Q5_K: the fifth bit of sub-block bit is qh's bit `bit`
    for (int l = 0; l < 32; ++l) {
      const int hi = five ? ((qh[l] >> bit) & 1) << 4 : 0;
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) | hi) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int hi = five ? ((qh[l] >> (bit + 1)) & 1) << 4 : 0;
      *y++ = d2 * static_cast<float>((ql[l] >> 4) | hi) - m2;
    }
  }
}

void q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] (int8), d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16(b + 208);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(mant), -24);  // subnormal: exact
    return sign ? -v : v;
  } else {
    bits = sign | (static_cast<uint32_t>(exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float fp8_to_float(uint8_t code, bool e4m3) {
  const int mbits = e4m3 ? 3 : 2, ebits = e4m3 ? 4 : 5, bias = e4m3 ? 7 : 15;
  const int m = code & ((1 << mbits) - 1), e = (code >> mbits) & ((1 << ebits) - 1);
  const float sign = code & 0x80 ? -1.0f : 1.0f;
  if (e4m3 && e == 15 && m == 7) return std::nanf("");
  if (!e4m3 && e == 31) return m ? std::nanf("") : sign * INFINITY;
  const float frac = static_cast<float>(m) / static_cast<float>(1 << mbits);
  return sign * (e == 0 ? std::ldexp(frac, 1 - bias) : std::ldexp(1 + frac, e - bias));
}

BlockFormat block_format(DType type) {
  switch (type) {
    case DType::Q4_0: return {QK, 18};
    case DType::Q4_1: return {QK, 20};
    case DType::Q5_0: return {QK, 22};
    case DType::Q5_1: return {QK, 24};
    case DType::Q8_0: return {QK, 34};
    case DType::Q2_K: return {QK_K, 84};
    case DType::Q3_K: return {QK_K, 110};
    case DType::Q4_K: return {QK_K, 144};
    case DType::Q5_K: return {QK_K, 176};
    case DType::Q6_K: return {QK_K, 210};
    default: return {1, static_cast<int64_t>(dtype_size(type))};
  }
}

int64_t row_bytes(DType type, int64_t n) {
  const BlockFormat f = block_format(type);
  if (f.bytes == 0 || n % f.values)
    throw Error(concat("a row of ", n, " values is not a whole number of ", dtype_name(type), " blocks (", f.values, " values)"));
  return n / f.values * f.bytes;
}

void decode(DType type, const uint8_t* src, int64_t n, float* dst) {
  using Table = std::array<float, 256>;
  auto fp8_table = [](bool e4m3) {
    Table t{};
    for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = fp8_to_float(static_cast<uint8_t>(c), e4m3);
    return t;
  };
  static const Table e4m3 = fp8_table(true), e5m2 = fp8_table(false);
  const BlockFormat f = block_format(type);
  const int64_t blocks = n / f.values;
  auto each_block = [&](auto&& fn) {
    for (int64_t i = 0; i < blocks; ++i) fn(src + i * f.bytes, dst + i * f.values);
  };
  switch (type) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16: for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(u16(src + 2 * i)); return;
    case DType::BF16: for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(u16(src + 2 * i)); return;
    case DType::F8_E4M3: for (int64_t i = 0; i < n; ++i) dst[i] = e4m3[src[i]]; return;
    case DType::F8_E5M2: for (int64_t i = 0; i < n; ++i) dst[i] = e5m2[src[i]]; return;
    case DType::Q4_0: each_block(q4_0); return;
    case DType::Q4_1: each_block(q4_1); return;
    case DType::Q5_0: each_block(q5_0); return;
    case DType::Q5_1: each_block(q5_1); return;
    case DType::Q8_0: each_block(q8_0); return;
    case DType::Q2_K: each_block(q2_k); return;
    case DType::Q3_K: each_block(q3_k); return;
    case DType::Q4_K: each_block([](const uint8_t* b, float* y) { q45_k(b, y, false); }); return;
    case DType::Q5_K: each_block([](const uint8_t* b, float* y) { q45_k(b, y, true); }); return;
    case DType::Q6_K: each_block(q6_k); return;
    default: throw Error(concat("values of type ", dtype_name(type), " cannot be decoded as numbers"));
  }
}

}  // namespace kino::quant
