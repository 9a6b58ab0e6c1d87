// Small functional building blocks shared by the models.
// Parameters are plain tensors; modules are structs of them plus forward().
#pragma once
#include <ATen/ATen.h>
#include <torch/version.h>

#include <map>
#include <optional>
#include <string>

#include "kino/error.h"
#include "loading/weights.h"

namespace kino {
// Optional record of intermediate activations, keyed like the fixtures.
using Trace = std::map<std::string, at::Tensor>;
}  // namespace kino

namespace kino::nn {

// A linear layer whose weight is dense, or kept in its stored encoding
// (GGUF blocks, fp8) and decoded right before the matmul.
struct Linear {
  at::Tensor weight, bias;             // [out, in] (undefined when packed), [out] or undefined
  std::vector<LowRankDelta> deltas;    // LoRAs kept apart from a packed weight (before `packed`: it fills them)
  std::optional<PackedMatrix> packed;  // the weight in its stored encoding
  Linear() = default;
  Linear(Weights& w, const std::string& name, int64_t in, int64_t out, bool with_bias = true)
      : packed(w.take_packed(name + ".weight", {out, in}, &deltas)) {
    if (!packed) weight = w.take(name + ".weight", {out, in});
    if (with_bias) bias = w.take(name + ".bias", {out});
  }
  // Runs in the weight dtype (bf16 weights take bf16 activations).
  at::Tensor operator()(const at::Tensor& x) const {
    const at::Tensor xr = x.to(dtype());
    at::Tensor y = at::linear(xr, dense_weight(), bias);
    for (const LowRankDelta& d : deltas) y.add_(at::linear(at::linear(xr, d.down), d.up), d.scale);
    return y;
  }
  at::Tensor dense_weight() const { return packed ? packed->dequantize() : weight; }
  at::ScalarType dtype() const { return packed ? packed->dtype() : weight.scalar_type(); }
  int64_t out_features() const { return packed ? packed->rows() : weight.size(0); }
  // Moves to the device of `options` and, if it has one, its dtype
  // (`non_blocking`: an asynchronous copy from pinned memory).
  void to(const at::TensorOptions& options, bool non_blocking = false) {
    if (packed) packed->to(options, non_blocking);
    else weight = weight.to(options, non_blocking);
    if (bias.defined()) bias = bias.to(options, non_blocking);
    for (LowRankDelta& d : deltas) {
      d.down = d.down.to(options, non_blocking);
      d.up = d.up.to(options, non_blocking);
    }
  }
  void pin_memory() {
    if (packed) packed->pin_memory();
    else weight = weight.pin_memory();
    if (bias.defined()) bias = bias.pin_memory();
    for (LowRankDelta& d : deltas) {
      d.down = d.down.pin_memory();
      d.up = d.up.pin_memory();
    }
  }
};

// An embedding table, dense or kept in its stored encoding (only the rows
// looked up are decoded).
struct Embedding {
  at::Tensor weight;
  std::optional<PackedMatrix> packed;
  Embedding() = default;
  Embedding(Weights& w, const std::string& name, int64_t rows, int64_t cols) : packed(w.take_packed(name, {rows, cols})) {
    if (!packed) weight = w.take(name, {rows, cols});
  }
  at::Tensor operator()(const at::Tensor& ids) const {
    return packed ? packed->rows(ids) : at::embedding(weight, ids.to(weight.device()));
  }
  void to(const at::TensorOptions& options) {
    if (packed) packed->to(options);
    else weight = weight.to(options);
  }
  void pin_memory() {
    if (packed) packed->pin_memory();
    else weight = weight.pin_memory();
  }
};

// Visitors over a module's parameters: one lambda for tensors, one for
// layers (C++17's overload idiom).
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

// RMS norm over the last axis: x * rsqrt(mean(x^2) + eps) * weight, in float32
// (T5LayerNorm / WanRMSNorm).
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean({-1}, true) + eps);
  return y.to(x.scalar_type()) * weight;
}

// LayerNorm over the last axis in float32 (WanLayerNorm); weight/bias optional.
inline at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  return at::layer_norm(x.to(at::kFloat), {x.size(-1)}, weight, bias, eps).to(x.scalar_type());
}

inline at::Tensor gelu_tanh(const at::Tensor& x) { return at::gelu(x, "tanh"); }

// Whether attention() runs fused (libtorch 2.x), without a [Lq, Lk] score matrix.
constexpr bool kFusedAttention = TORCH_VERSION_MAJOR >= 2;

// Restricts fused attention (libtorch 2.x) to one back end: "flash", "cudnn",
// "efficient" or "math"; "auto" restores libtorch's own choice. Chosen by
// measurement (kino-bench --attention-bench). Process-wide.
inline void select_attention_backend(const std::string& name) {
  if (name != "auto" && name != "flash" && name != "cudnn" && name != "efficient" && name != "math")
    throw Error(concat("unknown attention back end '", name, "' (expected auto, flash, cudnn, efficient or math)"));
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  const bool all = name == "auto";
  at::globalContext().setSDPUseFlash(all || name == "flash");
  at::globalContext().setSDPUseCuDNN(all || name == "cudnn");
  at::globalContext().setSDPUseMemEfficient(all || name == "efficient");
  at::globalContext().setSDPUseMath(all || name == "math");
#else
  if (name != "auto") throw Error(concat("attention back end '", name, "' needs libtorch 2.3 or later"));
#endif
}

// softmax(q k^T * scale + bias) v on [B, H, L, D] tensors; `bias` is additive
// (broadcast to [B, H, Lq, Lk]) or undefined.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                            double scale) {
#if TORCH_VERSION_MAJOR >= 2
  c10::optional<at::Tensor> mask;
  if (bias.defined()) mask = bias.to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale);
#else
  at::Tensor logits = at::matmul(q, k.transpose(-2, -1)) * scale;
  if (bias.defined()) logits = logits + bias;
  return at::matmul(at::softmax(logits.to(at::kFloat), -1).to(q.scalar_type()), v);
#endif
}

}  // namespace kino::nn
