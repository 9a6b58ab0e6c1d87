// The fused CUDA stages of the DiT (kino/fused_ops.h) against their
// composites. Needs a CUDA build with the kernels (scripts/gpu-build.sh);
// skipped elsewhere. The composite with a float32 output is the reference;
// the kernel rounds the same float32 arithmetic once to bf16, so each value
// may differ from it by half a bf16 spacing (2^-9 relative) plus float32
// operation-order differences: bounded here by one spacing, 2^-8.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/fused_ops.h"

using namespace kino;

namespace {

#define KINO_REQUIRE_FUSED_KERNELS()                                                     \
  if (!at::hasCUDA() || !fused::kernels_built())                                         \
  GTEST_SKIP() << "needs a CUDA device and a build with the fused kernels (nvcc)"

const at::TensorOptions kCuda = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
constexpr double kBf16Spacing = 1.0 / 256;  // 2^-8

// max |out - ref| / (|ref| + floor): relative per element, with an absolute
// floor for values near zero (which bf16 stores just as relatively).
double max_rel(const at::Tensor& out, const at::Tensor& ref, double floor = 1e-3) {
  const at::Tensor o = out.to(at::kCPU, at::kDouble), r = ref.to(at::kCPU, at::kDouble);
  return ((o - r).abs() / (r.abs() + floor)).max().item<double>();
}

}  // namespace

TEST(FusedOps, NormModulateMatchesComposite) {
  KINO_REQUIRE_FUSED_KERNELS();
  c10::InferenceMode inference;
  at::manual_seed(1);
  const at::Tensor x = at::randn({2, 37, 96}, kCuda) * 3 + 1;
  const std::vector<at::Tensor> m = (at::randn({2, 6, 96}, kCuda) * 0.5).chunk(6, 1);  // strided [2, 1, 96]
  const at::Tensor w = at::randn({96}, kCuda), b = at::randn({96}, kCuda), none;
  for (bool affine : {false, true}) {
    for (bool modulate : {false, true}) {
      const at::Tensor& wt = affine ? w : none;
      const at::Tensor& bt = affine ? b : none;
      const at::Tensor& sh = modulate ? m[0] : none;
      const at::Tensor& sc = modulate ? m[1] : none;
      const at::Tensor ref = fused::norm_modulate(x, wt, bt, sh, sc, 1e-6, at::kFloat);
      const at::Tensor out = fused::norm_modulate(x, wt, bt, sh, sc, 1e-6, at::kBFloat16);
      ASSERT_EQ(out.scalar_type(), at::kBFloat16);
      ASSERT_EQ(out.sizes(), x.sizes());
      EXPECT_LE(max_rel(out, ref), kBf16Spacing) << "affine " << affine << ", modulate " << modulate;
    }
  }
}

// The residual update fused with the next norm: the new residual in float32
// (the same sum up to operation order) and the normalised input in bf16.
TEST(FusedOps, ResidualNormModulateMatchesComposite) {
  KINO_REQUIRE_FUSED_KERNELS();
  c10::InferenceMode inference;
  at::manual_seed(4);
  const at::Tensor h = at::randn({2, 37, 96}, kCuda) * 20 + 50;  // a large mean against the spread
  const at::Tensor y = at::randn({2, 37, 96}, kCuda).to(at::kBFloat16);
  const std::vector<at::Tensor> m = (at::randn({2, 6, 96}, kCuda) * 0.5).chunk(6, 1);
  const at::Tensor w = at::randn({96}, kCuda), b = at::randn({96}, kCuda), none;
  for (bool gated : {false, true}) {
    for (bool affine : {false, true}) {
      const at::Tensor& g = gated ? m[2] : none;
      const at::Tensor& wt = affine ? w : none;
      const at::Tensor& bt = affine ? b : none;
      const at::Tensor& sh = affine ? none : m[0];
      const at::Tensor& sc = affine ? none : m[1];
      const auto [h_ref, x_ref] = fused::residual_norm_modulate(h, y, g, wt, bt, sh, sc, 1e-6, at::kFloat);
      const auto [h_out, x_out] = fused::residual_norm_modulate(h, y, g, wt, bt, sh, sc, 1e-6, at::kBFloat16);
      ASSERT_EQ(h_out.scalar_type(), at::kFloat);
      ASSERT_EQ(x_out.scalar_type(), at::kBFloat16);
      EXPECT_LE(max_rel(h_out, h_ref), 1e-6) << "gated " << gated << ", affine " << affine;
      EXPECT_LE(max_rel(x_out, x_ref), kBf16Spacing) << "gated " << gated << ", affine " << affine;
    }
  }
}

TEST(FusedOps, QkNormRopeMatchesComposite) {
  KINO_REQUIRE_FUSED_KERNELS();
  c10::InferenceMode inference;
  at::manual_seed(2);
  const int64_t B = 2, L = 37, heads = 4, C = 96, half = C / heads / 2;
  const at::Tensor x = (at::randn({B, L, C}, kCuda) * 2).to(at::kBFloat16);
  const at::Tensor w = at::randn({C}, kCuda);
  const at::Tensor angles = at::rand({B, L, 1, half}, kCuda) * 6.3;
  const at::Tensor per_sample = at::polar(at::ones_like(angles), angles);  // complex64
  for (const at::Tensor& rot : {at::Tensor(), per_sample, per_sample.slice(0, 0, 1)}) {
    const at::Tensor ref = fused::qk_norm_rope(x, w, rot, heads, 1e-6, at::kFloat);
    const at::Tensor out = fused::qk_norm_rope(x, w, rot, heads, 1e-6, at::kBFloat16);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{B, L, heads, C / heads}));
    EXPECT_LE(max_rel(out, ref), kBf16Spacing) << "rotations " << (rot.defined() ? rot.sizes() : at::IntArrayRef{});
  }
}

// The FFN's first layer with bias and GELU in the cuBLASLt epilogue, which
// applies the GELU to the float32 product and rounds once; two bf16 spacings,
// since where libtorch does not use cuBLASLt it rounds the product to bf16
// before the GELU (and GELU's slope can double that error near its minimum).
TEST(FusedOps, LinearGeluTanhMatchesComposite) {
  if (!at::hasCUDA()) GTEST_SKIP() << "needs a CUDA device";
  c10::InferenceMode inference;
  at::manual_seed(3);
  nn::Linear l;
  l.weight = (at::randn({160, 96}, kCuda) * 0.1).to(at::kBFloat16);
  l.bias = (at::randn({160}, kCuda) * 0.1).to(at::kBFloat16);
  const at::Tensor x = at::randn({2, 37, 96}, kCuda).to(at::kBFloat16);
  nn::Linear l32{l};
  l32.weight = l.weight.to(at::kFloat);
  l32.bias = l.bias.to(at::kFloat);
  const at::Tensor ref = fused::linear_gelu_tanh(l32, x.to(at::kFloat));  // float32 composite
  const at::Tensor out = fused::linear_gelu_tanh(l, x);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 37, 160}));
  EXPECT_LE(max_rel(out, ref, 1e-2), 2 * kBf16Spacing);
}
