// Named parameter tensors for a model, taken from safetensors files.
// Every model constructor pulls its tensors through take(); finish() then
// reports all missing and all unexpected names at once.
#pragma once
#include <ATen/ATen.h>

#include <set>
#include <string>
#include <vector>

#include "kino/safetensors.h"

namespace kino {

// Converts a tensor view to an owned at::Tensor of the same dtype.
at::Tensor to_tensor(const TensorView& view);

class Weights {
 public:
  // `path`: a .safetensors file or a sharded checkpoint's index JSON.
  // Tensors are converted to `dtype` (floating tensors only).
  explicit Weights(const std::string& path, at::ScalarType dtype = at::kFloat);

  // The tensor `prefix + name`, checked against `shape` (empty = any shape).
  // A missing name is recorded and an undefined tensor returned; call finish().
  at::Tensor take(const std::string& name, const std::vector<int64_t>& shape = {});
  bool has(const std::string& name) const;

  // Throws kino::Error listing missing tensors and tensors nobody took.
  void finish() const;

  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  const std::string& path() const { return set_.path(); }

 private:
  SafetensorsSet set_;
  at::ScalarType dtype_;
  std::string prefix_;
  std::set<std::string> taken_;
  std::vector<std::string> missing_;
};

}  // namespace kino
