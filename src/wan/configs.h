// The Wan modules' configurations (wan/configs, wan/modules), read from and
// written to a manifest's transformer.config and vae.config. No torch here.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/manifest.h"
#include "text/umt5_config.h"

namespace kino {

// Wan diffusion transformer (WanModel): Wan2.1's 1.3B by default.
struct WanDiTConfig {
  int64_t in_dim = 16, out_dim = 16, dim = 1536, ffn_dim = 8960, freq_dim = 256;
  int64_t text_dim = 4096, text_len = 512, num_heads = 12, num_layers = 30;
  std::vector<int64_t> patch_size = {1, 2, 2};
  bool qk_norm = true, cross_attn_norm = true;
  double eps = 1e-6;
  // Wan2.1 I2V/FLF2V: the CLIP width of the image features the
  // cross-attention also reads (img_emb, k_img, v_img; 0: text only), and
  // FLF2V's learned positions of its first- and last-frame tokens (emb_pos
  // rows; 0: none).
  int64_t image_dim = 0, image_pos_tokens = 0;
  // VACE (vace_model.py VaceWanModel): the channels of the VACE context
  // (0: no VACE blocks) and, per VACE block, the main block whose output
  // its hint is added to (increasing).
  int64_t vace_in_dim = 0;
  std::vector<int64_t> vace_layers;
  // Tokens of a latent of frames x height x width (the patch grid).
  int64_t tokens(int64_t frames, int64_t height, int64_t width) const {
    return frames / patch_size[0] * (height / patch_size[1]) * (width / patch_size[2]);
  }
  // Reads a manifest's config object (fields left out keep these values);
  // `where` names it in errors.
  static WanDiTConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

// Wan causal 3D VAE: Wan2.1's by default, wan22_defaults() for Wan2.2's.
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
  // Reads a manifest's config object (fields left out keep these values);
  // `where` names it in errors.
  static WanVAEConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

// The CLIP vision tower of Wan2.1 I2V/FLF2V (clip_xlm_roberta_vit_h_14):
// ViT-H/14 at 224 pixels by default.
struct ClipVisionConfig {
  int64_t image_size = 224, patch_size = 14, dim = 1280, num_heads = 16, num_layers = 32, mlp_ratio = 4;
  double eps = 1e-5;
  int64_t grid() const { return image_size / patch_size; }
  static ClipVisionConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

// The configs of a Wan manifest's components (fields left out take the
// Wan2.1 values); `low_noise`: the low-noise expert's.
UMT5Config umt5_config(const ModelManifest& m);
WanDiTConfig dit_config(const ModelManifest& m, bool low_noise = false);
// The step-caching constants `m` takes (request/cache_spec.h): its
// manifest's "cache_constants", else the Wan2.1 T2V models the caching
// scripts were tuned on, by their shapes (1.3B: dim 1536, 30 layers; 14B:
// dim 5120, 40 layers); "" for none.
std::string cache_constants_name(const ModelManifest& m);
WanVAEConfig vae_config(const ModelManifest& m);
ClipVisionConfig clip_config(const ModelManifest& m);

}  // namespace kino
