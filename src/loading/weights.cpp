#include "loading/weights.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "kino/error.h"
#include "quant/blocks.h"

namespace kino {

namespace {

at::ScalarType scalar_type(const TensorView& v) {
  switch (v.dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
    default: return at::kFloat;  // fp8 and ggml blocks: decoded by to_tensor
  }
  throw Error(concat("tensor '", v.name, "': dtype ", dtype_name(v.dtype), " is not supported by this build"));
}

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// `stored` is `expected`, or `expected` without some of its leading unit
// dimensions (Hugging Face's class_embedding [D] for the official [1, 1, D]).
bool fits(at::IntArrayRef stored, at::IntArrayRef expected) {
  for (size_t k = 0; k <= expected.size(); ++k) {
    if (stored == expected.slice(k)) return true;
    if (k < expected.size() && expected[k] != 1) return false;
  }
  return false;
}

}  // namespace

at::Tensor to_tensor(const TensorView& view) {
  if (is_quantised(view.dtype)) {
    at::Tensor t = at::empty(view.shape, at::kFloat);
    quant::decode(view.dtype, view.data, view.numel(), t.data_ptr<float>());
    return t;
  }
  at::Tensor t = at::empty(view.shape, at::TensorOptions().dtype(scalar_type(view)));
  if (view.nbytes) std::memcpy(t.data_ptr(), view.data, view.nbytes);  // safetensors data may be unaligned
  return t;
}

Weights::Weights(const std::string& path, at::ScalarType dtype, bool trainable, at::Device device)
    : set_(TensorSet::open(path)), dtype_(dtype), device_(device), trainable_(trainable) {}

Weights::Weights(const WeightIndex& index, at::ScalarType dtype)
    : set_(TensorSet::open(index.path)), names_(index.names), dtype_(dtype) {}

Weights Weights::initializer(uint64_t seed, at::Device device) {
  Weights w;
  w.init_ = at::detail::createCPUGenerator(seed);
  w.device_ = device;
  return w;
}

Weights Weights::random(uint64_t seed, at::TensorOptions options, std::optional<DType> packed) {
  at::manual_seed(seed);  // the default generators of every device
  Weights w;
  w.random_ = options;
  w.random_packed_ = packed;
  return w;
}

bool Weights::has(const std::string& name) const {
  return !set_ || !stored_name(name).empty() || !stored_name(joined_part(name, 0)).empty();
}

std::string Weights::stored_name(const std::string& official) const {
  if (names_.empty()) return set_->find(official) ? official : std::string();
  auto it = names_.find(official);
  return it == names_.end() ? std::string() : it->second;
}

at::Tensor Weights::take(const std::string& name, const std::vector<int64_t>& shape) {
  if (init_ || random_) {
    if (shape.empty()) throw Error(concat(path(), ": tensor '", name, "' needs a shape"));
    const at::TensorOptions options = random_ ? *random_ : at::TensorOptions(at::kFloat);
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_scale = name.find("norm") != std::string::npos || name.find("gamma") != std::string::npos;
    at::Tensor t;
    if (is_bias) {
      t = at::zeros(shape, options);
    } else if (is_scale) {
      t = at::ones(shape, options);
    } else {
      int64_t fan_in = 1;
      for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
      if (shape.size() == 1 || name.find("embedding.weight") != std::string::npos) fan_in = shape.back();
      t = (init_ ? at::randn(shape, *init_) : at::randn(shape, options)).mul_(1 / std::sqrt(static_cast<double>(fan_in)));
    }
    if (random_) return t;
    t = t.to(device_);
    t.set_requires_grad(true);
    created_[name] = t;
    return t;
  }
  at::Tensor t;
  if (const std::string stored = stored_name(name); !stored.empty()) {
    const TensorView* view = set_->find(stored);
    if (!shape.empty() && !fits(view->shape, shape))
      throw Error(concat(set_->file_of(stored), ": tensor '", stored, "' has shape ", shape_str(view->shape),
                         ", the config expects ", shape_str(shape)));
    t = take_stored(stored);
  } else if (!stored_name(joined_part(name, 0)).empty()) {
    std::vector<at::Tensor> parts;
    for (int k = 0; !stored_name(joined_part(name, k)).empty(); ++k) parts.push_back(take_stored(stored_name(joined_part(name, k))));
    t = at::cat(parts);
    if (!shape.empty() && !fits(t.sizes(), shape))
      throw Error(concat(path(), ": the parts of '", name, "' join to shape ", shape_str(t.sizes()), ", the config expects ",
                         shape_str(shape)));
  } else {
    missing_.push_back(name);
    return {};
  }
  if (!shape.empty()) t = t.reshape(shape);
  if (!t.is_floating_point()) return t;
  if (patch_) {
    t = t.to(at::kFloat);
    patch_(name, t);
  }
  // A poisoned or damaged file: NaN or infinity anywhere makes the sum
  // non-finite (one pass, no allocation), and would give a black or white
  // video with no error.
  if (!std::isfinite(t.sum().item<double>()))
    throw Error(concat(path(), ": tensor '", name, "' holds NaN or infinite values"));
  t = t.to(device_, dtype_);
  if (trainable_) {
    t.set_requires_grad(true);
    created_[name] = t;
  }
  return t;
}

float Weights::fp8_scale(const std::string& stored) const {
  // ComfyUI's "scaled fp8": weight = float(code) * scale (without a scale:
  // plain fp8, the codes themselves).
  for (const std::string& scale_name : fp8_scale_names(stored))
    if (const TensorView* scale = set_->find(scale_name)) {
      if (scale->numel() != 1) throw Error(concat(set_->file_of(stored), ": '", scale->name, "' must hold one number"));
      const float s = to_tensor(*scale).to(at::kFloat).item<float>();
      if (!std::isfinite(s)) throw Error(concat(set_->file_of(stored), ": '", scale->name, "' is not finite"));
      return s;
    }
  return 1.0f;
}

at::Tensor Weights::take_stored(const std::string& stored) {
  const TensorView* view = set_->find(stored);
  taken_.insert(stored);
  at::Tensor t = to_tensor(*view);
  if (is_fp8(view->dtype))
    if (const float scale = fp8_scale(stored); scale != 1.0f) t.mul_(scale);
  return t;
}

std::optional<PackedMatrix> Weights::take_packed(const std::string& name, const std::vector<int64_t>& shape,
                                                 std::vector<LowRankDelta>* deltas) {
  // As city96's converter quantises only the blocks' matrices (and keeps
  // rows that are not whole blocks dense).
  if (random_packed_ && shape.size() == 2 && starts_with(name, "blocks.") && shape[1] % quant::block_format(*random_packed_).values == 0)
    return PackedMatrix::random(*random_packed_, shape[0], shape[1], *random_);
  if (!set_ || trainable_ || shape.size() != 2) return std::nullopt;
  const std::string stored = stored_name(name);
  const TensorView* view = stored.empty() ? nullptr : set_->find(stored);
  if (!view || !is_quantised(view->dtype)) return std::nullopt;
  if (patched_.count(name)) {
    std::vector<LowRankDelta> d = deltas && low_rank_ ? low_rank_(name) : std::vector<LowRankDelta>{};
    if (d.empty()) return std::nullopt;
    for (LowRankDelta& x : d) {
      x.down = x.down.to(device_, dtype_);
      x.up = x.up.to(device_, dtype_);
    }
    *deltas = std::move(d);
  }
  if (view->shape != shape)
    throw Error(concat(set_->file_of(stored), ": tensor '", stored, "' has shape ", shape_str(view->shape), ", the config expects ",
                       shape_str(shape)));
  taken_.insert(stored);
  const int64_t rows = shape[0], cols = shape[1], row_bytes = quant::row_bytes(view->dtype, cols);
  at::Tensor bytes = at::empty({rows, row_bytes}, at::kByte);
  std::memcpy(bytes.data_ptr(), view->data, view->nbytes);
  // As take() sums dense tensors: a NaN or infinity in any decoded value
  // (a poisoned scale) is named before anything runs.
  std::atomic<bool> finite{true};
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end && finite; ++r) {
      quant::decode(view->dtype, view->data + r * row_bytes, cols, row.data());
      float sum = 0;
      for (float v : row) sum += v * 0.0f;  // NaN or infinity survive the product
      if (!std::isfinite(sum)) finite = false;
    }
  });
  if (!finite) throw Error(concat(path(), ": tensor '", name, "' holds NaN or infinite values"));
  const float scale = is_fp8(view->dtype) ? fp8_scale(stored) : 1.0f;
  PackedMatrix packed(view->dtype, cols, bytes, scale, dtype_);
  packed.to(at::TensorOptions().device(device_));
  return packed;
}

void Weights::finish() const {
  if (!set_) return;
  std::vector<std::string> unexpected;
  if (names_.empty()) {
    for (const auto& n : set_->names())
      if (!taken_.count(n)) unexpected.push_back(n);
  } else {
    for (const auto& [official, stored] : names_)
      if (!taken_.count(stored)) unexpected.push_back(stored);
  }
  if (missing_.empty() && unexpected.empty()) return;
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 8) s += concat(", ... (", v.size(), " in all)");
    return s;
  };
  std::string msg = concat(set_->path(), ":");
  if (!missing_.empty()) msg += concat(" missing tensors: ", list(missing_), ";");
  if (!unexpected.empty()) msg += concat(" unexpected tensors: ", list(unexpected), ";");
  msg.pop_back();
  throw Error(msg);
}

}  // namespace kino
