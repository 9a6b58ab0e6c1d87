#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kino/error.h"
#include "loading/tensor_file.h"
#include "util/json_parse.h"

namespace kino {

namespace {

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
    {DType::Q4_0, "Q4_0", 0},       {DType::Q4_1, "Q4_1", 0},       {DType::Q5_0, "Q5_0", 0},
    {DType::Q5_1, "Q5_1", 0},       {DType::Q8_0, "Q8_0", 0},       {DType::Q2_K, "Q2_K", 0},
    {DType::Q3_K, "Q3_K", 0},       {DType::Q4_K, "Q4_K", 0},       {DType::Q5_K, "Q5_K", 0},
    {DType::Q6_K, "Q6_K", 0},
};

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

std::optional<DType> dtype_named(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

bool is_block_type(DType dtype) { return dtype >= DType::Q4_0; }

bool is_fp8(DType dtype) { return dtype == DType::F8_E4M3 || dtype == DType::F8_E5M2; }

bool is_quantised(DType dtype) { return is_block_type(dtype) || is_fp8(dtype); }

bool is_floating(DType d) {
  return d == DType::F64 || d == DType::F32 || d == DType::F16 || d == DType::BF16 || is_quantised(d);
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

FileBytes::FileBytes(const std::string& path) {
  // O_NONBLOCK: opening a FIFO does not wait for a writer (it is then
  // refused as not a regular file); no effect on regular files.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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
    mapped_ = true;
  }
  ::close(fd);
}

FileBytes::FileBytes(std::vector<uint8_t> bytes) : size_(bytes.size()), owned_(std::move(bytes)) { data_ = owned_.data(); }

FileBytes::~FileBytes() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

TensorFile::TensorFile(std::string path, std::shared_ptr<const FileBytes> bytes, std::vector<TensorView> tensors,
                       std::map<std::string, std::string> metadata)
    : path_(std::move(path)), bytes_(std::move(bytes)), tensors_(std::move(tensors)), metadata_(std::move(metadata)) {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (!index_.emplace(tensors_[i].name, i).second) throw Error(concat(path_, ": tensor '", tensors_[i].name, "' appears twice"));
}

TensorFile TensorFile::parse(const std::string& name, std::shared_ptr<const FileBytes> bytes) {
  // torch.save's zip starts with a local file header, "PK\3\4".
  const uint8_t* d = bytes->data();
  if (bytes->size() >= 4 && d[0] == 'P' && d[1] == 'K' && d[2] == 3 && d[3] == 4) return read_pth(name, std::move(bytes));
  const bool gguf_name = name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0;
  if (gguf_name || (bytes->size() >= 4 && std::memcmp(d, "GGUF", 4) == 0)) return read_gguf(name, std::move(bytes));
  return read_safetensors(name, std::move(bytes));
}

TensorFile TensorFile::open(const std::string& path) { return parse(path, std::make_shared<const FileBytes>(path)); }

const TensorView* TensorFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorSet TensorSet::open(const std::string& path) {
  std::error_code ec;
  if (path.find('\0') != std::string::npos) throw Error("a weights path holds a NUL character");
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw Error(concat("not a regular file: ", path));
  TensorSet set;
  set.path_ = path;
  const bool is_index = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    set.files_.push_back(TensorFile::open(path));
  } else {
    std::ifstream in(path);
    if (!in) throw Error(concat("cannot open ", path, ": ", std::strerror(errno)));
    const nlohmann::json index = parse_json(in, path);
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
        set.files_.push_back(TensorFile::open((folder / shard).string()));
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

const TensorView* TensorSet::find(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? nullptr : files_[it->second].find(name);
}

const std::string& TensorSet::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? path_ : files_[it->second].path();
}

std::vector<std::string> TensorSet::names() const {
  std::vector<std::string> out;
  for (const auto& kv : owner_) out.push_back(kv.first);
  return out;
}


}  // namespace kino
