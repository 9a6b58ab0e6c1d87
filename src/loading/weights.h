// Named parameter tensors for a model, taken from safetensors files.
// Every model constructor pulls its tensors through take(); finish() then
// reports all missing and all unexpected names at once.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "loading/layouts.h"
#include "loading/tensor_file.h"
#include "quant/packed.h"

namespace kino {

// Converts a tensor view to an owned at::Tensor of the same dtype; fp8
// (F8_E4M3, F8_E5M2), which libtorch 1.13 lacks, and ggml's block types
// are decoded to float32.
at::Tensor to_tensor(const TensorView& view);

// A change to each tensor as it loads (an adapter merged into it): given
// the official name and the tensor in float32, it patches the tensor in place.
using WeightPatch = std::function<void(const std::string& official, at::Tensor& tensor)>;

// An adapter kept apart from a weight that stays quantised: its layer adds
// scale · (x downᵀ) upᵀ to its output (down [r, in], up [out, r], float32).
struct LowRankDelta {
  at::Tensor down, up;
  double scale = 1;
};
// The deltas on one official weight; empty when what patches it is not only
// low-rank pairs (then the weight is decoded and patched instead).
using LowRankSource = std::function<std::vector<LowRankDelta>(const std::string& official)>;

class Weights {
 public:
  // `path`: a .safetensors file or a sharded checkpoint's index JSON.
  // Tensors are converted to `dtype` (floating tensors only).
  // `trainable`: every tensor taken requires grad and is kept in parameters().
  // `device`: where floating tensors are placed (training on a GPU).
  explicit Weights(const std::string& path, at::ScalarType dtype = at::kFloat, bool trainable = false,
                   at::Device device = at::kCPU);
  // A component's weights in the layout its index found (layouts.h): take()
  // asks for the official names; "scaled fp8" weights come back as
  // float(code) * scale.
  explicit Weights(const WeightIndex& index, at::ScalarType dtype = at::kFloat);

  // A source for training from scratch: take() creates every tensor it is
  // asked for (norm scales and gammas 1, biases 0, everything else
  // N(0, 1/fan_in)), float32 with requires_grad, and keeps it in parameters().
  // The values are drawn on the CPU, so a seed gives the same start on every
  // `device`.
  static Weights initializer(uint64_t seed, at::Device device = at::kCPU);
  // Random weights for benchmarks: the same rule as initializer(), made
  // directly in `options` (dtype, device) without gradients; no file is read.
  // With `packed`, the transformer blocks' matrices are random blocks of
  // that type (PackedMatrix::random) instead.
  static Weights random(uint64_t seed, at::TensorOptions options, std::optional<DType> packed = std::nullopt);
  const std::map<std::string, at::Tensor>& parameters() const { return created_; }

  // The tensor `name`, checked against `shape` (empty = any shape).
  // A missing name is recorded and an undefined tensor returned; call finish().
  at::Tensor take(const std::string& name, const std::vector<int64_t>& shape = {});
  bool has(const std::string& name) const;
  // The 2-D weight `name` [out, in] kept in its stored encoding when it is
  // block-quantised or fp8 (dequantised before each use, in the run dtype);
  // nullopt when it is stored densely or in parts (then take() gives it).
  // An adapter on it stays apart, in `deltas`, when it is low-rank pairs
  // only and the caller takes deltas; otherwise nullopt too, and take()
  // gives the weight decoded and patched.
  std::optional<PackedMatrix> take_packed(const std::string& name, const std::vector<int64_t>& shape,
                                          std::vector<LowRankDelta>* deltas = nullptr);
  // Every floating tensor taken from now on passes through `patch` in
  // float32 before it is converted to the run dtype; the tensors named in
  // `patched` (those it changes) are decoded even where take_packed()
  // would keep them quantised.
  // `low_rank`: the unmerged form of the patch, for weights kept quantised.
  void set_patch(WeightPatch patch, std::set<std::string> patched, LowRankSource low_rank = {}) {
    patch_ = std::move(patch);
    patched_ = std::move(patched);
    low_rank_ = std::move(low_rank);
  }

  // Throws kino::Error listing missing tensors and tensors nobody took.
  void finish() const;

  std::string path() const { return set_ ? set_->path() : std::string(random_ ? "<random>" : "<initializer>"); }

 private:
  Weights() = default;
  // The name `official` has in the file, "" when it has none.
  std::string stored_name(const std::string& official) const;
  // A stored tensor, fp8 codes scaled; marks it taken.
  at::Tensor take_stored(const std::string& stored);
  // The scale of a stored fp8 weight (1 without one).
  float fp8_scale(const std::string& stored) const;

  std::optional<TensorSet> set_;
  std::map<std::string, std::string> names_;  // official -> stored (identity without a component)
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  std::optional<at::Generator> init_;
  std::optional<at::TensorOptions> random_;
  std::optional<DType> random_packed_;
  bool trainable_ = false;
  WeightPatch patch_;
  std::set<std::string> patched_;
  LowRankSource low_rank_;
  std::map<std::string, at::Tensor> created_;
  std::set<std::string> taken_;
  std::vector<std::string> missing_;
};

}  // namespace kino
