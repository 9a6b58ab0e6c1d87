// GGUF (llama.cpp's format, v2 and v3; gguf-py's reader and ggml's gguf.c
// define it): a header, typed key/value metadata, tensor infos, then the
// tensor data, each tensor at an aligned offset. Every count, length and
// offset is checked against the bytes that remain before it is used.
#include <cstring>
#include <limits>
#include <optional>

#include "kino/error.h"
#include "loading/tensor_file.h"
#include "quant/blocks.h"
#include "util/json_parse.h"

namespace kino {

namespace {

// ggml_type ids (ggml.h) of the types kino decodes; 4 and 5 (Q4_2, Q4_3)
// were removed from ggml, the IQ/TQ types are not read.
std::optional<DType> ggml_type(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 3: return DType::Q4_1;
    case 6: return DType::Q5_0;
    case 7: return DType::Q5_1;
    case 8: return DType::Q8_0;
    case 10: return DType::Q2_K;
    case 11: return DType::Q3_K;
    case 12: return DType::Q4_K;
    case 13: return DType::Q5_K;
    case 14: return DType::Q6_K;
    case 24: return DType::I8;
    case 25: return DType::I16;
    case 26: return DType::I32;
    case 27: return DType::I64;
    case 28: return DType::F64;
    case 30: return DType::BF16;
    default: return std::nullopt;
  }
}

// gguf_type: the value types of the metadata.
enum ValueType : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };
constexpr size_t kScalarSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

constexpr int kMaxDims = 5;  // ggml's 4, and Wan's 5-D patch embedding (city96's fix_5d_tensors.py)

class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  Error fail(const std::string& what) const { return Error(concat(path_, ": ", what)); }
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  const uint8_t* take(uint64_t n, const char* what) {
    if (n > left()) throw fail(concat("truncated: ", what, " needs ", n, " bytes at offset ", pos_, ", ", left(), " remain"));
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint64_t u(size_t width, const char* what) {
    const uint8_t* p = take(width, what);
    uint64_t v = 0;
    for (size_t i = width; i-- > 0;) v = (v << 8) | p[i];  // little endian
    return v;
  }
  std::string str(const char* what) {
    const uint64_t n = u(8, what);
    if (n > left()) throw fail(concat(what, " of ", n, " bytes is longer than the rest of the file (", left(), " bytes)"));
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }

 private:
  std::string path_;
  const uint8_t* data_;
  size_t size_, pos_ = 0;
};

// A scalar as text (metadata values are strings in TensorFile).
std::string scalar_text(Reader& r, uint32_t type) {
  const uint64_t v = r.u(kScalarSize[type], "a metadata value");
  switch (type) {
    case I8: return std::to_string(static_cast<int8_t>(v));
    case I16: return std::to_string(static_cast<int16_t>(v));
    case I32: return std::to_string(static_cast<int32_t>(v));
    case I64: return std::to_string(static_cast<int64_t>(v));
    case BOOL: return v ? "true" : "false";
    case F32: {
      float f;
      const uint32_t b = static_cast<uint32_t>(v);
      std::memcpy(&f, &b, 4);
      return concat(f);
    }
    case F64: {
      double f;
      std::memcpy(&f, &v, 8);
      return concat(f);
    }
    default: return std::to_string(v);
  }
}

// One metadata value. Short numeric arrays (shapes) are kept as JSON text,
// long ones (a tokenizer's vocabulary) are skipped over; nested arrays are
// refused as ggml refuses them.
std::optional<std::string> value(Reader& r, uint32_t type, const std::string& key) {
  if (type > F64) throw r.fail(concat("metadata '", key, "' has unknown value type ", type));
  if (type == STRING) return r.str("a metadata string");
  if (type != ARRAY) return scalar_text(r, type);
  const uint32_t elem = static_cast<uint32_t>(r.u(4, "an array type"));
  if (elem > F64 || elem == ARRAY) throw r.fail(concat("metadata '", key, "' is an array of unsupported type ", elem));
  const uint64_t n = r.u(8, "an array length");
  const uint64_t min_size = elem == STRING ? 8 : kScalarSize[elem];
  if (n > r.left() / min_size) throw r.fail(concat("metadata '", key, "' claims ", n, " elements, more than the file holds"));
  const bool keep = elem != STRING && elem != BOOL && n <= 64;
  std::string text = "[";
  for (uint64_t i = 0; i < n; ++i) {
    if (elem == STRING) {
      r.str("an array string");
    } else {
      const std::string s = scalar_text(r, elem);
      if (keep) text += (i ? ", " : "") + s;
    }
  }
  if (!keep) return std::nullopt;
  return text + "]";
}

// comfy.gguf.orig_shape.<tensor>: the torch shape ComfyUI-GGUF's converter
// reshaped away, as a JSON array of positive integers.
std::optional<std::vector<int64_t>> orig_shape(const std::string& text) {
  nlohmann::json j;
  try {
    j = parse_json(text, "comfy.gguf.orig_shape");
  } catch (const Error&) {
    return std::nullopt;  // a string value: named by the caller's error
  }
  if (!j.is_array()) return std::nullopt;
  std::vector<int64_t> shape;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1) return std::nullopt;
    shape.push_back(v.get<int64_t>());
  }
  return shape;
}

}  // namespace

TensorFile read_gguf(const std::string& path, std::shared_ptr<const FileBytes> bytes) {
  Reader r(path, bytes->data(), bytes->size());
  if (bytes->size() < 4 || std::memcmp(bytes->data(), "GGUF", 4) != 0) throw r.fail("not a GGUF file (bad magic)");
  r.take(4, "the magic");
  const uint64_t version = r.u(4, "the version");
  if (version != 2 && version != 3) throw r.fail(concat("GGUF version ", version, " is not supported (2 and 3 are)"));
  const uint64_t n_tensors = r.u(8, "the tensor count"), n_kv = r.u(8, "the metadata count");
  // The smallest metadata entry is 13 bytes (empty key, type, one byte), a
  // tensor info 24 (empty name, one dimension, type, offset).
  if (n_kv > r.left() / 13) throw r.fail(concat("the header claims ", n_kv, " metadata entries, more than the file holds"));
  if (n_tensors > r.left() / 24) throw r.fail(concat("the header claims ", n_tensors, " tensors, more than the file holds"));

  std::map<std::string, std::string> metadata;
  uint64_t alignment = 32;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.str("a metadata key");
    const uint32_t type = static_cast<uint32_t>(r.u(4, "a value type"));
    const std::optional<std::string> v = value(r, type, key);
    if (key == "general.alignment") {
      if (type != U32 || !v) throw r.fail("general.alignment must be a uint32");
      alignment = std::stoull(*v);
      if (alignment == 0 || (alignment & (alignment - 1)) || alignment > 65536)
        throw r.fail(concat("general.alignment ", alignment, " is not a power of two up to 65536"));
    }
    if (v && !metadata.emplace(key, *v).second) throw r.fail(concat("metadata key '", key, "' appears twice"));
  }

  struct Info {
    TensorView view;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info info;
    TensorView& t = info.view;
    t.name = r.str("a tensor name");
    const uint64_t n_dims = r.u(4, "a dimension count");
    if (n_dims < 1 || n_dims > kMaxDims)
      throw r.fail(concat("tensor '", t.name, "' has ", n_dims, " dimensions (1 to ", kMaxDims, " are read)"));
    std::vector<int64_t> ne;
    long double numel = 1;
    for (uint64_t d = 0; d < n_dims; ++d) {
      const uint64_t n = r.u(8, "a dimension");
      if (n > (1ull << 40)) throw r.fail(concat("tensor '", t.name, "' has dimension ", n));
      ne.push_back(static_cast<int64_t>(n));
      numel *= static_cast<long double>(n);
    }
    if (numel > static_cast<long double>(bytes->size()) * 8)
      throw r.fail(concat("tensor '", t.name, "' has more elements than the file can hold"));
    const uint32_t type_id = static_cast<uint32_t>(r.u(4, "a tensor type"));
    const std::optional<DType> dtype = ggml_type(type_id);
    if (!dtype) throw r.fail(concat("tensor '", t.name, "' has ggml type ", type_id, ", which kino does not read"));
    t.dtype = *dtype;
    info.offset = r.u(8, "a tensor offset");
    if (info.offset % alignment)
      throw r.fail(concat("tensor '", t.name, "' data offset ", info.offset, " is not a multiple of the alignment ", alignment));
    // ne runs from the innermost dimension: the torch shape is reversed.
    t.shape.assign(ne.rbegin(), ne.rend());
    const quant::BlockFormat f = quant::block_format(t.dtype);
    if (ne[0] % f.values)
      throw r.fail(concat("tensor '", t.name, "' rows of ", ne[0], " values are not whole ", dtype_name(t.dtype), " blocks"));
    t.nbytes = static_cast<size_t>(static_cast<uint64_t>(t.numel() / f.values) * static_cast<uint64_t>(f.bytes));
    infos.push_back(std::move(info));
  }

  // As ggml's gguf.c requires: the tensors follow each other in the data
  // section, each padded to the alignment, and all of it is in the file.
  const uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  const uint64_t data_size = data_start <= bytes->size() ? bytes->size() - data_start : 0;
  std::vector<TensorView> tensors;
  uint64_t expected = 0;
  for (Info& info : infos) {
    TensorView& t = info.view;
    const uint64_t padded = (t.nbytes + alignment - 1) / alignment * alignment;
    if (info.offset != expected)
      throw r.fail(concat("tensor '", t.name, "' data offset ", info.offset, " is not where the previous tensor ends (", expected, ")"));
    if (padded > data_size || info.offset > data_size - padded)
      throw r.fail(concat("tensor '", t.name, "' data (", t.nbytes, " bytes at offset ", info.offset,
                          ") extends past the end of the file"));
    expected += padded;
    t.data = bytes->data() + data_start + info.offset;
    if (auto it = metadata.find("comfy.gguf.orig_shape." + t.name); it != metadata.end()) {
      const std::optional<std::vector<int64_t>> shape = orig_shape(it->second);
      TensorView reshaped = t;
      if (shape) reshaped.shape = *shape;
      if (!shape || reshaped.numel() != t.numel() || (is_block_type(t.dtype) && reshaped.shape.back() % quant::block_format(t.dtype).values))
        throw r.fail(concat("comfy.gguf.orig_shape.", t.name, " = ", it->second, " does not fit the tensor"));
      t.shape = *shape;
    }
    tensors.push_back(std::move(t));
  }
  return TensorFile(path, std::move(bytes), std::move(tensors), std::move(metadata));
}

}  // namespace kino
