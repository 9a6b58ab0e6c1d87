#include "kino/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "kino/atomic_file.h"
#include "kino/error.h"

namespace kino {

namespace {

// A header larger than this is refused before anything is allocated for it
// (real checkpoints have headers of a few MB at most).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},         {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},         {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},           {DType::U8, "U8", 1},           {DType::BOOL, "BOOL", 1},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

const char* dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Read-only private mapping of a whole file, unmapped when the last user goes.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(concat("cannot open ", path, ": ", std::strerror(errno)));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(concat("not a regular file: ", path));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw Error(concat("cannot map ", path, ": ", std::strerror(errno)));
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.map_ = std::make_shared<MappedFile>(path);
  const size_t file_size = f.map_->size();
  auto fail = [&](const std::string& what) -> Error { return Error(concat(path, ": ", what)); };

  if (file_size < 8) throw fail(concat("truncated: ", file_size, " bytes, no header length"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | f.map_->data()[i];
  if (header_len > kMaxHeaderBytes) throw fail(concat("header length ", header_len, " exceeds the limit"));
  if (header_len > file_size - 8)
    throw fail(concat("header length ", header_len, " exceeds the file size ", file_size));

  const char* hbegin = reinterpret_cast<const char*>(f.map_->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hbegin, hbegin + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw fail(concat("header is not valid JSON (", e.what(), ")"));
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  const uint8_t* data = f.map_->data() + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> spans;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) throw fail(concat("__metadata__ field '", m.key(), "' is not a string"));
        f.metadata_[m.key()] = m.value().get<std::string>();
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
    const DTypeInfo* info = find_dtype(dtype_str);
    if (!info) throw bad(concat("unknown dtype '", dtype_str, "'"));

    TensorView view;
    view.name = name;
    view.dtype = info->dtype;
    // numel * size is checked against the data size after every factor, so
    // it cannot overflow (each factor is below 2^63 and bytes <= data_size).
    long double bytes = static_cast<long double>(info->size);
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
    f.index_[name] = f.tensors_.size();
    f.tensors_.push_back(std::move(view));
  }

  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second)
      throw fail(concat("tensor data overlaps at byte ", spans[i].first));
  return f;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsSet SafetensorsSet::open(const std::string& path) {
  SafetensorsSet set;
  set.path_ = path;
  const bool is_index = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    set.files_.push_back(SafetensorsFile::open(path));
  } else {
    std::ifstream in(path);
    if (!in) throw Error(concat("cannot open ", path, ": ", std::strerror(errno)));
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(concat(path, ": not valid JSON (", e.what(), ")"));
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(concat(path, ": no \"weight_map\" object"));
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    std::map<std::string, size_t> shard_index;
    std::map<std::string, std::string> expected;  // tensor -> shard file
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(concat(path, ": weight_map['", it.key(), "'] is not a string"));
      const std::string shard = it.value().get<std::string>();
      if (!shard_index.count(shard)) {
        shard_index[shard] = set.files_.size();
        set.files_.push_back(SafetensorsFile::open((folder / shard).string()));
      }
      expected[it.key()] = shard;
    }
    for (const auto& [name, shard] : expected)
      if (!set.files_[shard_index[shard]].find(name))
        throw Error(concat(path, ": tensor '", name, "' is not in its shard ", shard));
  }
  for (size_t i = 0; i < set.files_.size(); ++i) {
    for (const auto& t : set.files_[i].tensors()) {
      auto [it, inserted] = set.owner_.emplace(t.name, i);
      if (!inserted && it->second != i)
        throw Error(concat(path, ": tensor '", t.name, "' appears in two shards"));
    }
  }
  return set;
}

const TensorView* SafetensorsSet::find(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? nullptr : files_[it->second].find(name);
}

const std::string& SafetensorsSet::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? path_ : files_[it->second].path();
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& kv : owner_) out.push_back(kv.first);
  return out;
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
