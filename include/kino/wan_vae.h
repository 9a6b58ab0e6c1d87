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

#include "kino/nn.h"
#include "kino/weights.h"

namespace kino {

struct WanVAEConfig {
  bool wan22 = false;  // the Wan2.2 design (see above)
  int64_t dim = 96, z_dim = 16, num_res_blocks = 2;
  int64_t dec_dim = 0;  // Wan2.2's decoder width (0: dim)
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  std::vector<bool> temporal_downsample = {false, true, true};
  // WanVAE's fixed per-channel latent statistics.
  std::vector<float> latents_mean = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                                     0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
  std::vector<float> latents_std = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};
  int64_t temporal_stride() const;  // 4
  int64_t spatial_stride() const;   // 8 for Wan2.1, 16 for Wan2.2
  int64_t patch() const { return wan22 ? 2 : 1; }
  int64_t decoder_dim() const { return dec_dim ? dec_dim : dim; }
  // The Wan2.2 design with its 48 latent statistics (Wan2_2_VAE).
  static WanVAEConfig wan22_defaults();
};

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
