#include "text/tokenizer.h"
#include "text/text_clean.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

#include "kino/error.h"
#include "loading/tensor_file.h"

namespace kino {

namespace {

// The sentencepiece shim, opened once per process in a fresh link namespace.
struct SpmLibrary {
  void* (*load)(const char*, size_t, char*, int) = nullptr;
  void (*free)(void*) = nullptr;
  int (*vocab_size)(void*) = nullptr;
  int (*encode)(void*, const char*, int*, int) = nullptr;
  int (*train)(const char*, char*, int) = nullptr;
};

std::string shim_path() {
  if (const char* env = std::getenv("KINO_SPM_SHIM")) return env;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const std::string name = fs::path(KINO_SPM_SHIM_BUILD_PATH).filename().string();
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / name);
    candidates.push_back(exe.parent_path().parent_path() / name);
    candidates.push_back(exe.parent_path().parent_path() / "lib" / "kino" / name);
  }
  candidates.push_back(KINO_SPM_SHIM_INSTALL_PATH);
  candidates.push_back(KINO_SPM_SHIM_BUILD_PATH);
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  return KINO_SPM_SHIM_BUILD_PATH;
}

const SpmLibrary& spm() {
  static SpmLibrary lib;
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    const std::string path = shim_path();
    void* h = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      error = concat("cannot load the sentencepiece shim ", path, ": ", dlerror());
      return;
    }
    lib.load = reinterpret_cast<decltype(lib.load)>(dlsym(h, "kino_spm_load"));
    lib.free = reinterpret_cast<decltype(lib.free)>(dlsym(h, "kino_spm_free"));
    lib.vocab_size = reinterpret_cast<decltype(lib.vocab_size)>(dlsym(h, "kino_spm_vocab_size"));
    lib.encode = reinterpret_cast<decltype(lib.encode)>(dlsym(h, "kino_spm_encode"));
    lib.train = reinterpret_cast<decltype(lib.train)>(dlsym(h, "kino_spm_train"));
    if (!lib.load || !lib.free || !lib.vocab_size || !lib.encode || !lib.train)
      error = concat("the sentencepiece shim ", path, " lacks an entry point");
  });
  if (!error.empty()) throw Error(error);
  return lib;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& model_path) {
  if (access(model_path.c_str(), R_OK) != 0) throw Error(concat("cannot read tokenizer ", model_path));
  // A weight file carries the model as a U8 tensor `spiece_model` (ComfyUI's
  // umT5 files); anything else is the model file itself.
  std::optional<TensorSet> weights;
  const TensorView* embedded = nullptr;
  std::shared_ptr<const FileBytes> file;
  const uint8_t* data = nullptr;
  size_t size = 0;
  if (std::filesystem::path(model_path).extension() == ".safetensors") {
    weights = TensorSet::open(model_path);
    embedded = weights->find("spiece_model");
    if (!embedded || embedded->dtype != DType::U8)
      throw Error(concat(model_path, ": no U8 tensor 'spiece_model' (a tokenizer) in this weight file"));
    data = embedded->data;
    size = embedded->nbytes;
  } else {
    file = std::make_shared<FileBytes>(model_path);
    data = file->data();
    size = file->size();
  }
  char err[512] = {0};
  handle_ = spm().load(reinterpret_cast<const char*>(data), size, err, sizeof err);
  if (!handle_) throw Error(concat(model_path, ": not a sentencepiece model (", err, ")"));
}

Tokenizer::~Tokenizer() {
  if (handle_) spm().free(handle_);
}

int64_t Tokenizer::vocab_size() const { return spm().vocab_size(handle_); }

std::vector<int64_t> Tokenizer::pieces(const std::string& cleaned) const {
  std::vector<int> buf(cleaned.size() + 16);
  int n = spm().encode(handle_, cleaned.c_str(), buf.data(), static_cast<int>(buf.size()));
  if (n > static_cast<int>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = spm().encode(handle_, cleaned.c_str(), buf.data(), n);
  }
  if (n < 0) throw Error("sentencepiece failed to encode the prompt");
  return std::vector<int64_t>(buf.begin(), buf.begin() + n);
}

Tokens Tokenizer::encode(const std::string& text, int64_t max_len) const {
  if (max_len < 1) throw Error(concat("text length must be at least 1, got ", max_len));
  std::vector<int64_t> p = pieces(clean_prompt(text));
  Tokens t;
  t.truncated = static_cast<int64_t>(p.size()) > max_len - 1;
  if (t.truncated) p.resize(static_cast<size_t>(max_len - 1));
  p.push_back(kEos);
  t.length = static_cast<int64_t>(p.size());
  t.ids.assign(static_cast<size_t>(max_len), kPad);
  t.mask.assign(static_cast<size_t>(max_len), 0);
  for (size_t i = 0; i < p.size(); ++i) {
    t.ids[i] = p[i];
    t.mask[i] = 1;
  }
  return t;
}

void train_sentencepiece(const std::string& args) {
  char err[1024] = {0};
  if (spm().train(args.c_str(), err, sizeof err) != 0) throw Error(concat("sentencepiece training failed: ", err));
}

}  // namespace kino
