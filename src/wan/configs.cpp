#include "wan/configs.h"

#include "util/json_fields.h"

namespace kino {

WanDiTConfig WanDiTConfig::from_json(const nlohmann::json& j, const std::string& where) {
  WanDiTConfig c;
  read_field(j, "in_dim", c.in_dim, where);
  read_field(j, "out_dim", c.out_dim, where);
  read_field(j, "dim", c.dim, where);
  read_field(j, "ffn_dim", c.ffn_dim, where);
  read_field(j, "freq_dim", c.freq_dim, where);
  read_field(j, "text_dim", c.text_dim, where);
  read_field(j, "text_len", c.text_len, where);
  read_field(j, "num_heads", c.num_heads, where);
  read_field(j, "num_layers", c.num_layers, where);
  read_field(j, "patch_size", c.patch_size, where);
  read_field(j, "qk_norm", c.qk_norm, where);
  read_field(j, "cross_attn_norm", c.cross_attn_norm, where);
  read_field(j, "eps", c.eps, where);
  read_field(j, "image_dim", c.image_dim, where);
  read_field(j, "image_pos_tokens", c.image_pos_tokens, where);
  read_field(j, "vace_in_dim", c.vace_in_dim, where);
  read_field(j, "vace_layers", c.vace_layers, where);
  return c;
}

nlohmann::json WanDiTConfig::to_json() const {
  nlohmann::json j = {{"in_dim", in_dim},         {"out_dim", out_dim},     {"dim", dim},
          {"ffn_dim", ffn_dim},       {"freq_dim", freq_dim},   {"text_dim", text_dim},
          {"text_len", text_len},     {"num_heads", num_heads}, {"num_layers", num_layers},
          {"patch_size", patch_size}, {"qk_norm", qk_norm},     {"cross_attn_norm", cross_attn_norm},
          {"eps", eps},               {"image_dim", image_dim}, {"image_pos_tokens", image_pos_tokens}};
  if (vace_in_dim) j.update({{"vace_in_dim", vace_in_dim}, {"vace_layers", vace_layers}});
  return j;
}

WanVAEConfig WanVAEConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const bool residual = field_or(j, "is_residual", false, where);  // Diffusers' name for the Wan2.2 design
  WanVAEConfig c = residual ? wan22_defaults() : WanVAEConfig();
  read_field(j, "dim", c.dim, where);
  read_field(j, "dec_dim", c.dec_dim, where);
  read_field(j, "z_dim", c.z_dim, where);
  read_field(j, "num_res_blocks", c.num_res_blocks, where);
  read_field(j, "dim_mult", c.dim_mult, where);
  read_field(j, "temperal_downsample", c.temporal_downsample, where);  // the official spelling
  read_field(j, "temporal_downsample", c.temporal_downsample, where);
  read_field(j, "latents_mean", c.latents_mean, where);
  read_field(j, "latents_std", c.latents_std, where);
  return c;
}

nlohmann::json WanVAEConfig::to_json() const {
  nlohmann::json j = {{"dim", dim},
                      {"z_dim", z_dim},
                      {"num_res_blocks", num_res_blocks},
                      {"dim_mult", dim_mult},
                      {"temperal_downsample", temporal_downsample},
                      {"latents_mean", latents_mean},
                      {"latents_std", latents_std}};
  if (wan22) j.update({{"is_residual", true}, {"dec_dim", decoder_dim()}});
  return j;
}

int64_t WanVAEConfig::temporal_stride() const {
  int64_t s = 1;
  for (bool t : temporal_downsample) s *= t ? 2 : 1;
  return s;
}

int64_t WanVAEConfig::spatial_stride() const { return patch() << (dim_mult.size() - 1); }

WanVAEConfig WanVAEConfig::wan22_defaults() {
  WanVAEConfig c;
  c.wan22 = true;
  c.dim = 160;
  c.dec_dim = 256;
  c.z_dim = 48;
  // Wan2_2_VAE's constants.
  c.latents_mean = {
      -0.2289f, -0.0052f, -0.1323f, -0.2339f, -0.2799f, 0.0174f, 0.1838f, 0.1557f,
      -0.1382f, 0.0542f, 0.2813f, 0.0891f, 0.157f, -0.0098f, 0.0375f, -0.1825f,
      -0.2246f, -0.1207f, -0.0698f, 0.5109f, 0.2665f, -0.2108f, -0.2158f, 0.2502f,
      -0.2055f, -0.0322f, 0.1109f, 0.1567f, -0.0729f, 0.0899f, -0.2799f, -0.123f,
      -0.0313f, -0.1649f, 0.0117f, 0.0723f, -0.2839f, -0.2083f, -0.052f, 0.3748f,
      0.0152f, 0.1957f, 0.1433f, -0.2944f, 0.3573f, -0.0548f, -0.1681f, -0.0667f};
  c.latents_std = {
      0.4765f, 1.0364f, 0.4514f, 1.1677f, 0.5313f, 0.499f, 0.4818f, 0.5013f,
      0.8158f, 1.0344f, 0.5894f, 1.0901f, 0.6885f, 0.6165f, 0.8454f, 0.4978f,
      0.5759f, 0.3523f, 0.7135f, 0.6804f, 0.5833f, 1.4146f, 0.8986f, 0.5659f,
      0.7069f, 0.5338f, 0.4889f, 0.4917f, 0.4069f, 0.4999f, 0.6866f, 0.4093f,
      0.5709f, 0.6065f, 0.6415f, 0.4944f, 0.5726f, 1.2042f, 0.5458f, 1.6887f,
      0.3971f, 1.06f, 0.3943f, 0.5537f, 0.5444f, 0.4089f, 0.7468f, 0.7744f};
  return c;
}

UMT5Config umt5_config(const ModelManifest& m) { return UMT5Config::from_json(m.text_encoder_config, m.path + " text_encoder"); }

WanDiTConfig dit_config(const ModelManifest& m, bool low_noise) {
  return low_noise ? WanDiTConfig::from_json(m.transformer_low_noise_config, m.path + " transformer_low_noise")
                   : WanDiTConfig::from_json(m.transformer_config, m.path + " transformer");
}

WanVAEConfig vae_config(const ModelManifest& m) { return WanVAEConfig::from_json(m.vae_config, m.path + " vae"); }

ClipVisionConfig clip_config(const ModelManifest& m) {
  return ClipVisionConfig::from_json(m.image_encoder_config, m.path + " image_encoder");
}

ClipVisionConfig ClipVisionConfig::from_json(const nlohmann::json& j, const std::string& where) {
  ClipVisionConfig c;
  read_field(j, "image_size", c.image_size, where);
  read_field(j, "patch_size", c.patch_size, where);
  read_field(j, "dim", c.dim, where);
  read_field(j, "num_heads", c.num_heads, where);
  read_field(j, "num_layers", c.num_layers, where);
  read_field(j, "mlp_ratio", c.mlp_ratio, where);
  read_field(j, "eps", c.eps, where);
  return c;
}

nlohmann::json ClipVisionConfig::to_json() const {
  return {{"image_size", image_size}, {"patch_size", patch_size}, {"dim", dim}, {"num_heads", num_heads},
          {"num_layers", num_layers}, {"mlp_ratio", mlp_ratio},   {"eps", eps}};
}

std::string cache_constants_name(const ModelManifest& m) {
  if (!m.cache_constants.empty()) return m.cache_constants;
  if (m.family != "wan2.1" || m.task != "t2v") return "";
  const WanDiTConfig c = dit_config(m);
  if (c.dim == 1536 && c.num_layers == 30) return "wan2.1-t2v-1.3b";
  if (c.dim == 5120 && c.num_layers == 40) return "wan2.1-t2v-14b";
  return "";
}

}  // namespace kino
