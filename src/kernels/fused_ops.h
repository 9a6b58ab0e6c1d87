// Fused stages of the Wan DiT block. On CUDA, for bf16/fp16 runs without
// autograd, each is one kernel (src/kernels/fused_cuda.cu, built where nvcc is
// found) or one cuBLASLt call; everywhere else it is the composite of ATen ops
// with the reference arithmetic. Both compute in float32 and round once, to
// the run dtype, at the end; they differ only in float32 operation order.
#pragma once
#include <ATen/ATen.h>

#include <utility>

#include "nn/nn.h"

namespace kino::fused {

// Whether this build has the CUDA kernels.
bool kernels_built();

// Process-wide switch, on by default; off runs the composites everywhere
// (kino-bench --no-fused measures the difference).
void set_enabled(bool on);

// (LayerNorm(x) * weight + bias) * (1 + scale) + shift, returned in `out`.
// x: float32 [B, L, C]; weight, bias: [C] or undefined (WanLayerNorm without
// affine); shift, scale: [B, 1, C] (the block's modulation chunks; [B, L, C]
// per token for Wan2.2 image-to-video) or both undefined.
at::Tensor norm_modulate(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         const at::Tensor& shift, const at::Tensor& scale, double eps, at::ScalarType out);

// The residual update h + y * gate (gate [B, 1, C], or undefined for h + y;
// y in any float type, computed in float32) followed by norm_modulate of its
// result; returns {new h (float32), normalised input in `out`}.
std::pair<at::Tensor, at::Tensor> residual_norm_modulate(const at::Tensor& h, const at::Tensor& y,
                                                         const at::Tensor& gate, const at::Tensor& weight,
                                                         const at::Tensor& bias, const at::Tensor& shift,
                                                         const at::Tensor& scale, double eps, at::ScalarType out);

// Query/key preparation of a Wan attention: WanRMSNorm over the whole dim
// (skipped when `weight` is undefined), split into `heads`, then rope_apply
// by `rotations` ([B or 1, L, 1, head_dim / 2] complex, WanDiT's rope table;
// undefined for cross-attention). x: [B, L, C]; returns [B, L, heads, C /
// heads] in `out`.
at::Tensor qk_norm_rope(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& rotations, int64_t heads,
                        double eps, at::ScalarType out);

// gelu_tanh(l(x)): the FFN's first layer, with bias and GELU in the matrix
// product's epilogue on CUDA (cuBLASLt's GELU is the tanh form).
at::Tensor linear_gelu_tanh(const nn::Linear& l, const at::Tensor& x);

}  // namespace kino::fused
