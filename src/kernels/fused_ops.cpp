#include "kernels/fused_ops.h"

#include <c10/core/GradMode.h>

#include <atomic>

#include "kino/error.h"

namespace kino::fused {

#ifdef KINO_CUDA_KERNELS
namespace cuda {  // fused_cuda.cu
void norm_modulate(const at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& weight,
                   const at::Tensor& bias, const at::Tensor& shift, const at::Tensor& scale, double eps,
                   at::Tensor& x_out, at::Tensor& out);
void qk_norm_rope(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& rotations, int64_t head_dim,
                  double eps, at::Tensor& y);
}  // namespace cuda
#endif

namespace {

std::atomic<bool> g_enabled{true};

// A fused path runs on CUDA tensors of a reduced-precision run with no
// autograd (the kernels have no backward; training runs the composites).
[[maybe_unused]] bool fusable(const at::Tensor& x, at::ScalarType out) {
  return g_enabled.load() && x.is_cuda() && out != at::kFloat && out != at::kDouble &&
         !(c10::GradMode::is_enabled() && x.requires_grad());
}

// rope_apply: rotate consecutive channel pairs (x[2k], x[2k+1]) of each head
// of x [B, L, H, head_dim] as complex numbers by `table`, in the table's
// precision (complex128 for float32 runs, like the reference's float64).
at::Tensor rope(const at::Tensor& x, const at::Tensor& table) {
  const at::ScalarType real = table.scalar_type() == at::kComplexDouble ? at::kDouble : at::kFloat;
  const at::Tensor xc = at::view_as_complex(x.to(real).reshape({x.size(0), x.size(1), x.size(2), -1, 2}));
  return at::view_as_real(xc * table).flatten(3).to(at::kFloat);
}

#ifdef KINO_CUDA_KERNELS
// The kernels read one modulation row per sample ([B, 1, C]); Wan2.2's
// per-token rows ([B, L, C]) take the composite.
bool per_sample(const at::Tensor& m) { return !m.defined() || m.size(1) == 1; }
#endif

}  // namespace

bool kernels_built() {
#ifdef KINO_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

void set_enabled(bool on) { g_enabled = on; }

at::Tensor norm_modulate(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         const at::Tensor& shift, const at::Tensor& scale, double eps, at::ScalarType out) {
  if (shift.defined() != scale.defined()) throw Error("norm_modulate: shift and scale go together");
#ifdef KINO_CUDA_KERNELS
  if (fusable(x, out) && x.scalar_type() == at::kFloat && x.dim() == 3 && x.size(2) % 4 == 0 && per_sample(shift)) {
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(out)), none;
    cuda::norm_modulate(x.contiguous(), none, none, weight, bias, shift, scale, eps, none, y);
    return y;
  }
#endif
  at::Tensor n = nn::layer_norm(x, weight, bias, eps);
  if (shift.defined()) n = at::addcmul(shift, n, 1 + scale);
  return n.to(out);
}

std::pair<at::Tensor, at::Tensor> residual_norm_modulate(const at::Tensor& h, const at::Tensor& y,
                                                         const at::Tensor& gate, const at::Tensor& weight,
                                                         const at::Tensor& bias, const at::Tensor& shift,
                                                         const at::Tensor& scale, double eps, at::ScalarType out) {
#ifdef KINO_CUDA_KERNELS
  if (fusable(h, out) && h.scalar_type() == at::kFloat && h.dim() == 3 && h.size(2) % 4 == 0 &&
      y.sizes() == h.sizes() && !(c10::GradMode::is_enabled() && y.requires_grad()) &&
      shift.defined() == scale.defined() && per_sample(shift) && per_sample(gate)) {
    at::Tensor h_new = at::empty_like(h, at::MemoryFormat::Contiguous), x = at::empty(h.sizes(), h.options().dtype(out));
    cuda::norm_modulate(h.contiguous(), y.contiguous(), gate, weight, bias, shift, scale, eps, h_new, x);
    return {h_new, x};
  }
#endif
  at::Tensor h_new = gate.defined() ? at::addcmul(h, y, gate) : h + y;
  return {h_new, norm_modulate(h_new, weight, bias, shift, scale, eps, out)};
}

at::Tensor qk_norm_rope(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& rotations, int64_t heads,
                        double eps, at::ScalarType out) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2);
#ifdef KINO_CUDA_KERNELS
  if (fusable(x, out) && weight.defined() && (!rotations.defined() || rotations.scalar_type() == at::kComplexFloat)) {
    at::Tensor y = at::empty({B, L, heads, C / heads}, x.options().dtype(out));
    cuda::qk_norm_rope(x.contiguous(), weight, rotations, C / heads, eps, y);
    return y;
  }
#endif
  at::Tensor y = (weight.defined() ? nn::rms_norm(x.to(at::kFloat), weight, eps) : x).view({B, L, heads, C / heads});
  if (rotations.defined()) y = rope(y, rotations);
  return y.to(out);
}

at::Tensor linear_gelu_tanh(const nn::Linear& l, const at::Tensor& x) {
#if TORCH_VERSION_MAJOR >= 2
  if (fusable(x, l.dtype()) && l.bias.defined() && l.deltas.empty()) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = l.out_features();
    const at::Tensor x2 = x.to(l.dtype()).reshape({-1, x.size(-1)});
    return at::_addmm_activation(l.bias, x2, l.dense_weight().t(), 1, 1, /*use_gelu=*/true).view(shape);
  }
#endif
  return nn::gelu_tanh(l(x));
}

}  // namespace kino::fused
