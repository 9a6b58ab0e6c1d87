// Wan2.1 causal 3D VAE (wan/modules/vae.py WanVAE_ + the WanVAE wrapper's
// latent normalisation): 4x8x8 compression, 16 latent channels.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <utility>
#include <vector>

#include "kino/nn.h"
#include "kino/weights.h"

namespace kino {

struct WanVAEConfig {
  int64_t dim = 96, z_dim = 16, num_res_blocks = 2;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  std::vector<bool> temporal_downsample = {false, true, true};
  // WanVAE's fixed per-channel latent statistics.
  std::vector<float> latents_mean = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                                     0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
  std::vector<float> latents_std = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};
  int64_t temporal_stride() const;  // 4 for Wan2.1
  int64_t spatial_stride() const;   // 8 for Wan2.1
};

class WanVAE {
 public:
  WanVAE(const WanVAEConfig& cfg, Weights& w);
  ~WanVAE();
  WanVAE(WanVAE&&) noexcept;

  // video [3, 1+4k, H, W] in [-1, 1] -> normalised latent [z, 1+k, H/8, W/8].
  at::Tensor encode(const at::Tensor& video, Trace* trace = nullptr) const;
  // videos [B, 3, 1+4k, H, W] -> raw (mu, log_var), each [B, z, 1+k, H/8, W/8]
  // (before the latent normalisation; what training needs).
  std::pair<at::Tensor, at::Tensor> encode_moments(const at::Tensor& videos, Trace* trace = nullptr) const;
  // Raw latents ([z, F, h, w] or [B, z, F, h, w]: encode_moments' means or
  // samples) normalised with the config's latent statistics, as encode
  // returns them and decode_raw takes them.
  at::Tensor normalise(const at::Tensor& raw) const;
  // normalised latent [z, F, h, w] -> video [3, 1+4(F-1), 8h, 8w], not clamped (a
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
