#include "loading/tensor_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "kino/atomic_file.h"
#include "kino/error.h"
#include "util/json_parse.h"

namespace kino {

namespace {

// A header larger than this is refused before anything is allocated for it
// (real checkpoints have headers of a few MB at most).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// The safetensors dtypes (not ggml's block types).
std::optional<DType> parse_dtype(const std::string& name) {
  const std::optional<DType> d = dtype_named(name);
  return d && !is_block_type(*d) ? d : std::nullopt;
}

}  // namespace

TensorFile read_safetensors(const std::string& path, std::shared_ptr<const FileBytes> bytes) {
  const size_t file_size = bytes->size();
  auto fail = [&](const std::string& what) -> Error { return Error(concat(path, ": ", what)); };
  std::vector<TensorView> tensors;
  std::map<std::string, std::string> metadata;

  if (file_size < 8) throw fail(concat("truncated: ", file_size, " bytes, no header length"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes->data()[i];
  if (header_len > kMaxHeaderBytes) throw fail(concat("header length ", header_len, " exceeds the limit"));
  if (header_len > file_size - 8)
    throw fail(concat("header length ", header_len, " exceeds the file size ", file_size));

  const char* hbegin = reinterpret_cast<const char*>(bytes->data() + 8);
  nlohmann::json header;
  try {
    header = parse_json(hbegin, hbegin + header_len, "header");
  } catch (const Error& e) {
    throw fail(e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  const uint8_t* data = bytes->data() + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> spans;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) throw fail(concat("__metadata__ field '", m.key(), "' is not a string"));
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail(concat("tensor '", name, "': ", what)); };
    if (!entry.is_object()) throw bad("entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw bad("missing dtype");
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw bad("missing shape");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      throw bad("data_offsets must be [begin, end]");

    const std::string dtype_str = entry["dtype"].get<std::string>();
    const std::optional<DType> dtype = parse_dtype(dtype_str);
    if (!dtype) throw bad(concat("unknown dtype '", dtype_str, "'"));

    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    // numel * size is checked against the data size after every factor, so
    // it cannot overflow (each factor is below 2^63 and bytes <= data_size).
    long double bytes = static_cast<long double>(dtype_size(*dtype));
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("shape entries must be non-negative integers");
      view.shape.push_back(d.get<int64_t>());
      bytes *= static_cast<uint64_t>(d.get<int64_t>());
      if (bytes > data_size) throw bad(concat("shape needs more bytes than the file holds (", data_size, ")"));
    }
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) throw bad("data_offsets must be non-negative integers");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size)
      throw bad(concat("data_offsets [", begin, ", ", end, "] outside the data section of ", data_size, " bytes"));
    if (end - begin != static_cast<uint64_t>(bytes))
      throw bad(concat("byte length ", end - begin, " != ", static_cast<uint64_t>(bytes), " for shape and dtype ", dtype_str));
    view.data = data + begin;
    view.nbytes = end - begin;
    if (end > begin) spans.emplace_back(begin, end);
    tensors.push_back(std::move(view));
  }

  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second)
      throw fail(concat("tensor data overlaps at byte ", spans[i].first));
  return TensorFile(path, std::move(bytes), std::move(tensors), std::move(metadata));
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });

  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto* t : sorted) {
    if (t->name == "__metadata__" || header.contains(t->name)) throw Error(concat(path, ": duplicate or reserved tensor name '", t->name, "'"));
    uint64_t n = dtype_size(t->dtype);
    for (int64_t s : t->shape) {
      if (s < 0) throw Error(concat(path, ": negative dimension in tensor '", t->name, "'"));
      n *= static_cast<uint64_t>(s);
    }
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + n}}};
    sizes.push_back(n);
    offset += n;
  }
  std::string hdr = header.dump();
  hdr.append((8 - hdr.size() % 8) % 8, ' ');  // data section 8-byte aligned

  check_output_folder(path);
  AtomicFile out(path);
  std::FILE* fp = std::fopen(out.temp_path().c_str(), "wb");
  if (!fp) throw Error(concat("cannot write ", path, ": ", std::strerror(errno)));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(hdr.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, fp) == 8 && std::fwrite(hdr.data(), 1, hdr.size(), fp) == hdr.size();
  for (size_t i = 0; ok && i < sorted.size(); ++i)
    ok = sizes[i] == 0 || std::fwrite(sorted[i]->data, 1, sizes[i], fp) == sizes[i];
  int err = errno;
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) throw Error(concat("cannot write ", path, ": ", std::strerror(err ? err : errno)));
  out.commit();
}

}  // namespace kino
