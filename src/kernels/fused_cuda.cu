// CUDA kernels of kino/fused_ops.h. Each replaces 3-8 element-wise kernels of
// the composite, and their float32 intermediates, by one pass over the rows:
// one warp per row (a token's C channels), float32 arithmetic, one rounding to
// the output type. A row is read from memory once; the second read (the
// output pass after the statistics) comes from L1/L2.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kino/error.h"

namespace kino::fused::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;

__device__ inline float load(const float* p) { return *p; }
__device__ inline float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ inline float load(const __half* p) { return __half2float(*p); }
// Round to nearest even, as at::Tensor::to does.
__device__ inline void store(float* p, float v) { *p = v; }
__device__ inline void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ inline void store(__half* p, float v) { *p = __float2half_rn(v); }

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Four consecutive values in float32, loaded from / stored to float, bf16 or
// fp16 memory (16-byte or 2x4-byte accesses; C % 4 == 0 keeps them aligned).
struct F4 {
  float v[4];
};
__device__ inline F4 load4(const float* p) {
  const float4 t = *reinterpret_cast<const float4*>(p);
  return {{t.x, t.y, t.z, t.w}};
}
__device__ inline F4 load4(const __nv_bfloat16* p) {
  const auto* q = reinterpret_cast<const __nv_bfloat162*>(p);
  const float2 a = __bfloat1622float2(q[0]), b = __bfloat1622float2(q[1]);
  return {{a.x, a.y, b.x, b.y}};
}
__device__ inline F4 load4(const __half* p) {
  const auto* q = reinterpret_cast<const __half2*>(p);
  const float2 a = __half22float2(q[0]), b = __half22float2(q[1]);
  return {{a.x, a.y, b.x, b.y}};
}
__device__ inline void store4(float* p, const F4& f) {
  *reinterpret_cast<float4*>(p) = make_float4(f.v[0], f.v[1], f.v[2], f.v[3]);
}
__device__ inline void store4(__nv_bfloat16* p, const F4& f) {
  auto* q = reinterpret_cast<__nv_bfloat162*>(p);
  q[0] = __floats2bfloat162_rn(f.v[0], f.v[1]);
  q[1] = __floats2bfloat162_rn(f.v[2], f.v[3]);
}
__device__ inline void store4(__half* p, const F4& f) {
  auto* q = reinterpret_cast<__half2*>(p);
  q[0] = __floats2half2_rn(f.v[0], f.v[1]);
  q[1] = __floats2half2_rn(f.v[2], f.v[3]);
}

// For each row of x [rows, C] (C % 4 == 0):
//   with y:  x_out = x + y * gate (gate null: x + y), the residual update;
//   then     out = (LayerNorm(row) * weight + bias) * (1 + scale) + shift
// of x_out (or of x without y). weight, bias [C] and gate, shift, scale
// [rows / rows_per_sample, C] are each optional (null). The statistics are
// sums of (v - k) and (v - k)^2 with k the row's first value, so the variance
// does not cancel for rows whose mean is large against their spread.
template <typename Y, typename Out>
__global__ void norm_modulate_kernel(const float* __restrict__ x, const Y* __restrict__ y,
                                     const float* __restrict__ gate, float* __restrict__ x_out,
                                     const float* __restrict__ weight, const float* __restrict__ bias,
                                     const float* __restrict__ shift, const float* __restrict__ scale,
                                     Out* __restrict__ out, int64_t rows, int64_t rows_per_sample, int C, float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= rows) return;
  const int first = 4 * (threadIdx.x % kWarp), stride = 4 * kWarp;
  const int64_t sample = row / rows_per_sample;
  const float* xr = x + row * C;
  const float* src = xr;  // the row that is normalised
  float k, sum = 0.f, sq = 0.f;
  if (y) {
    const Y* yr = y + row * C;
    const float* g = gate ? gate + sample * C : nullptr;
    float* xo = x_out + row * C;
    k = g ? xr[0] + load(yr) * g[0] : xr[0] + load(yr);
    for (int c = first; c < C; c += stride) {
      F4 a = load4(xr + c);
      const F4 b = load4(yr + c);
      if (g) {
        const F4 gg = load4(g + c);
        for (int i = 0; i < 4; ++i) a.v[i] += b.v[i] * gg.v[i];
      } else {
        for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
      }
      store4(xo + c, a);
      for (int i = 0; i < 4; ++i) {
        const float d = a.v[i] - k;
        sum += d;
        sq += d * d;
      }
    }
    src = xo;  // read back below by the same thread that wrote it
  } else {
    k = xr[0];
    for (int c = first; c < C; c += stride) {
      const F4 a = load4(xr + c);
      for (int i = 0; i < 4; ++i) {
        const float d = a.v[i] - k;
        sum += d;
        sq += d * d;
      }
    }
  }
  const float mean_k = warp_sum(sum) / C;
  const float var = fmaxf(warp_sum(sq) / C - mean_k * mean_k, 0.f);
  const float mean = k + mean_k, rstd = rsqrtf(var + eps);
  const float* sh = shift ? shift + sample * C : nullptr;
  const float* sc = scale ? scale + sample * C : nullptr;
  Out* outr = out + row * C;
  for (int c = first; c < C; c += stride) {
    F4 n = load4(src + c);
    for (int i = 0; i < 4; ++i) {
      n.v[i] = (n.v[i] - mean) * rstd;
      if (weight) n.v[i] = n.v[i] * weight[c + i] + (bias ? bias[c + i] : 0.f);
      if (sc) n.v[i] = sh[c + i] + n.v[i] * (1.f + sc[c + i]);
    }
    store4(outr + c, n);
  }
}

// For each row of x [rows, C]: RMS-normalise over C and multiply by weight
// (WanRMSNorm), then rotate each pair (2k, 2k+1) of head channels by the
// unit complex number rot[sample][token][k mod head_dim / 2] (rope_apply);
// rot may be null (no rotation).
template <typename In, typename Out>
__global__ void qk_norm_rope_kernel(const In* __restrict__ x, const float* __restrict__ weight,
                                    const float2* __restrict__ rot, Out* __restrict__ y, int64_t rows,
                                    int64_t rows_per_sample, int64_t rot_sample_stride, int C, int half_head,
                                    float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= rows) return;
  const int lane = threadIdx.x % kWarp;
  const In* xr = x + row * C;
  float sq = 0.f;
  for (int c = lane; c < C; c += kWarp) {
    const float v = load(xr + c);
    sq += v * v;
  }
  const float rstd = rsqrtf(warp_sum(sq) / C + eps);
  const int64_t sample = row / rows_per_sample, token = row % rows_per_sample;
  const float2* rr = rot ? rot + sample * rot_sample_stride + token * half_head : nullptr;
  Out* yr = y + row * C;
  for (int p = lane; p < C / 2; p += kWarp) {
    float a = load(xr + 2 * p) * rstd * weight[2 * p];
    float b = load(xr + 2 * p + 1) * rstd * weight[2 * p + 1];
    if (rr) {
      const float2 r = rr[p % half_head];  // (cos, sin)
      const float ra = a * r.x - b * r.y;
      b = a * r.y + b * r.x;
      a = ra;
    }
    store(yr + 2 * p, a);
    store(yr + 2 * p + 1, b);
  }
}

// Calls f with a value of the CUDA type of `t` (float, bf16 or fp16).
template <typename F>
void with_type(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat: f(float{}); return;
    case at::kBFloat16: f(__nv_bfloat16{}); return;
    case at::kHalf: f(__half{}); return;
    default: throw Error(concat("fused kernels: unsupported dtype ", c10::toString(t)));
  }
}

const float* float_ptr_or_null(const at::Tensor& t, int64_t numel, const char* what) {
  if (!t.defined()) return nullptr;
  if (t.scalar_type() != at::kFloat || !t.is_contiguous() || t.numel() != numel)
    throw Error(concat("fused kernels: ", what, " must be contiguous float32 with ", numel, " values"));
  return t.data_ptr<float>();
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

void norm_modulate(const at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& weight,
                   const at::Tensor& bias, const at::Tensor& shift, const at::Tensor& scale, double eps,
                   at::Tensor& x_out, at::Tensor& out) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2);
  if (C % 4) throw Error(concat("fused kernels: norm_modulate needs a multiple of 4 channels, not ", C));
  // The modulation chunks are strided views of [B, 6, C]: made contiguous [B, 1, C].
  auto contiguous = [](const at::Tensor& t) { return t.defined() ? t.contiguous() : t; };
  const at::Tensor g = contiguous(gate), sh = contiguous(shift), sc = contiguous(scale);
  const float* gp = float_ptr_or_null(g, B * C, "gate");
  const float* w = float_ptr_or_null(weight, C, "layer-norm weight");
  const float* b = float_ptr_or_null(bias, C, "layer-norm bias");
  const float* shp = float_ptr_or_null(sh, B * C, "shift");
  const float* scp = float_ptr_or_null(sc, B * C, "scale");
  const at::ScalarType y_type = y.defined() ? y.scalar_type() : at::kFloat;
  with_type(y_type, [&](auto y_tag) {
    using Y = decltype(y_tag);
    with_type(out.scalar_type(), [&](auto out_tag) {
      using Out = decltype(out_tag);
      norm_modulate_kernel<Y, Out><<<blocks_for(B * L), kRowsPerBlock * kWarp, 0, at::cuda::getCurrentCUDAStream()>>>(
          x.data_ptr<float>(), y.defined() ? reinterpret_cast<const Y*>(y.data_ptr()) : nullptr, gp,
          x_out.defined() ? x_out.data_ptr<float>() : nullptr, w, b, shp, scp, reinterpret_cast<Out*>(out.data_ptr()),
          B * L, L, static_cast<int>(C), static_cast<float>(eps));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void qk_norm_rope(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& rotations, int64_t head_dim,
                  double eps, at::Tensor& y) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), half_head = head_dim / 2;
  const float* w = float_ptr_or_null(weight, C, "RMS-norm weight");
  const float2* rot = nullptr;
  int64_t rot_stride = 0;
  at::Tensor table;
  if (rotations.defined()) {
    // [B or 1, L, 1, head_dim / 2] complex64 -> (cos, sin) pairs.
    table = at::view_as_real(rotations.contiguous());
    if (table.size(1) != L || table.numel() != table.size(0) * L * half_head * 2 || (table.size(0) != 1 && table.size(0) != B))
      throw Error(concat("fused kernels: rope table ", rotations.sizes(), " does not fit ", x.sizes()));
    rot = reinterpret_cast<const float2*>(table.data_ptr<float>());
    rot_stride = table.size(0) == 1 ? 0 : L * half_head;
  }
  with_type(x.scalar_type(), [&](auto in_tag) {
    using In = decltype(in_tag);
    with_type(y.scalar_type(), [&](auto out_tag) {
      using Out = decltype(out_tag);
      qk_norm_rope_kernel<In, Out><<<blocks_for(B * L), kRowsPerBlock * kWarp, 0, at::cuda::getCurrentCUDAStream()>>>(
          reinterpret_cast<const In*>(x.data_ptr()), w, rot, reinterpret_cast<Out*>(y.data_ptr()), B * L, L,
          rot_stride, static_cast<int>(C), static_cast<int>(half_head), static_cast<float>(eps));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace kino::fused::cuda
