// Wan causal 3D VAE (wan/modules/vae.py WanVAE_ + the WanVAE wrapper's
// latent normalisation): Wan2.1's 4x8x8 compression to 16 channels, and
// Wan2.2's (vae2_2.py, TI2V-5B) 4x16x16 to 48 channels, which patchifies
// pixels 2x2 first, has a decoder width of its own and parameter-free
// shortcuts around every level (AvgDown3D / DupUp3D).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <utility>
#include <vector>

#include "nn/nn.h"
#include "wan/configs.h"
#include "loading/weights.h"

namespace kino {


// Wan2.2's parameter-free blocks (vae2_2.py), on [B, C, T, H, W]:
// patchify(x, 2) -> [B, 4C, T, H/2, W/2], out[c*4 + r*2 + q, t, i, j] =
// in[c, t, 2i + q, 2j + r], and its inverse; AvgDown3D and DupUp3D from C to
// `out` channels with time factor ft and space factor fs.
at::Tensor vae_patchify(const at::Tensor& x);
at::Tensor vae_unpatchify(const at::Tensor& x);
at::Tensor vae_avg_down(const at::Tensor& x, int64_t out, int64_t ft, int64_t fs);
at::Tensor vae_dup_up(const at::Tensor& x, int64_t out, int64_t ft, int64_t fs, bool first_chunk);

class WanVAE {
 public:
  WanVAE(const WanVAEConfig& cfg, Weights& w);
  ~WanVAE();
  WanVAE(WanVAE&&) noexcept;

  // video [3, 1+4k, H, W] in [-1, 1] -> normalised latent [z, 1+k, H/s, W/s]
  // (s: spatial_stride()).
  at::Tensor encode(const at::Tensor& video, Trace* trace = nullptr) const;
  // videos [B, 3, 1+4k, H, W] -> raw (mu, log_var), each [B, z, 1+k, H/s, W/s]
  // (before the latent normalisation; what training needs).
  std::pair<at::Tensor, at::Tensor> encode_moments(const at::Tensor& videos, Trace* trace = nullptr) const;
  // Raw latents ([z, F, h, w] or [B, z, F, h, w]: encode_moments' means or
  // samples) normalised with the config's latent statistics, as encode
  // returns them and decode_raw takes them.
  at::Tensor normalise(const at::Tensor& raw) const;
  // normalised latent [z, F, h, w] -> video [3, 1+4(F-1), s*h, s*w], not clamped (a
  // leading batch axis is kept if present). Decodes
  // one latent frame at a time, carrying each causal conv's last two input
  // frames (the official chunked decode), so memory does not grow with F.
  // `tile` > 0: decode in overlapping spatial tiles of that many pixels
  // (diffusers' tiled_decode), so memory does not grow with H x W either;
  // the blended seams differ slightly from a whole-frame decode.
  at::Tensor decode_raw(const at::Tensor& latent, Trace* trace = nullptr, int64_t tile = 0) const;
  // decode_raw clamped to [-1, 1], as WanVAE.decode returns it.
  at::Tensor decode(const at::Tensor& latent, int64_t tile = 0) const;

  const WanVAEConfig& config() const { return cfg_; }
  void to(at::Device device, at::ScalarType dtype);

  struct Impl;

 private:
  at::Tensor decode_frames(const at::Tensor& z, Trace* trace) const;

  WanVAEConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kino
