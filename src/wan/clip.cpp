#include "wan/clip.h"

#include <cmath>

#include "kino/error.h"

namespace kino {

namespace {

// CLIP's normalisation (clip.py CLIPModel: mean and std of its training images).
constexpr double kMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kStd[3] = {0.26862954, 0.26130258, 0.27577711};

}  // namespace

template <typename F>
void ClipVision::parameters(F&& f) {
  const int64_t d = cfg_.dim, p = cfg_.patch_size, g = cfg_.grid(), hidden = cfg_.mlp_ratio * d;
  auto linear = [&](nn::Linear& l, const std::string& name, int64_t in, int64_t out) { f(name, l, in, out); };
  f("patch_embedding.weight", patch_w_, {d, 3, p, p});  // no bias: the tower is pre-norm
  f("cls_embedding", cls_, {1, 1, d});
  f("pos_embedding", pos_, {1, 1 + g * g, d});
  f("pre_norm.weight", pre_norm_w_, {d});
  f("pre_norm.bias", pre_norm_b_, {d});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    const std::string name = "transformer." + std::to_string(i) + ".";
    f(name + "norm1.weight", b.norm1_w, {d});
    f(name + "norm1.bias", b.norm1_b, {d});
    linear(b.qkv, name + "attn.to_qkv", d, 3 * d);
    linear(b.proj, name + "attn.proj", d, d);
    f(name + "norm2.weight", b.norm2_w, {d});
    f(name + "norm2.bias", b.norm2_b, {d});
    linear(b.fc1, name + "mlp.0", d, hidden);
    linear(b.fc2, name + "mlp.2", hidden, d);
  }
}

ClipVision::ClipVision(const ClipVisionConfig& cfg, Weights& w) : cfg_(cfg) {
  if (cfg.num_layers < 2 || cfg.num_heads < 1 || cfg.dim % cfg.num_heads || cfg.patch_size < 1 ||
      cfg.image_size % cfg.patch_size)
    throw Error(concat("CLIP: dim ", cfg.dim, ", ", cfg.num_heads, " heads, ", cfg.num_layers, " layers, image ", cfg.image_size,
                       " in patches of ", cfg.patch_size, " is not a ViT kino runs"));
  blocks_.resize(static_cast<size_t>(cfg.num_layers - 1));
  parameters(nn::overloaded{[&](const std::string& name, at::Tensor& t, const std::vector<int64_t>& shape) { t = w.take(name, shape); },
                            [&](const std::string& name, nn::Linear& l, int64_t in, int64_t out) { l = nn::Linear(w, name, in, out); }});
}

void ClipVision::to(at::Device device, at::ScalarType dtype) {
  const at::TensorOptions options = at::TensorOptions().device(device).dtype(dtype);
  parameters(nn::overloaded{[&](const std::string&, at::Tensor& t, const std::vector<int64_t>&) { t = t.to(options); },
                            [&](const std::string&, nn::Linear& l, int64_t, int64_t) { l.to(options); }});
}

void ClipVision::pin_memory() {
  parameters(nn::overloaded{[](const std::string&, at::Tensor& t, const std::vector<int64_t>&) { t = t.pin_memory(); },
                            [](const std::string&, nn::Linear& l, int64_t, int64_t) { l.pin_memory(); }});
}

at::Tensor ClipVision::forward(const std::vector<at::Tensor>& images, Trace* trace) const {
  const int64_t S = cfg_.image_size, d = cfg_.dim, H = cfg_.num_heads, hd = d / H;
  const at::Device device = patch_w_.device();
  const at::ScalarType run = patch_w_.scalar_type();
  auto record = [&](const std::string& name, const at::Tensor& t) {
    if (trace) (*trace)[name] = t;
  };
  // Bicubic to S x S (align_corners False, no antialias, no clamp), back to [0, 1], CLIP's mean/std.
  std::vector<at::Tensor> resized;
  for (const auto& img : images) {
    if (img.dim() != 3 || img.size(0) != 3) throw Error(concat("CLIP: image shape ", img.sizes(), " is not [3, H, W]"));
    resized.push_back(at::upsample_bicubic2d(img.to(device, at::kFloat).unsqueeze(0), {S, S}, false));
  }
  const at::Tensor x01 = at::cat(resized).mul(0.5).add(0.5);
  record("resized_01", x01);
  const at::Tensor mean = at::tensor(std::vector<double>(kMean, kMean + 3), at::kDouble).to(device, at::kFloat).view({1, 3, 1, 1});
  const at::Tensor deviation = at::tensor(std::vector<double>(kStd, kStd + 3), at::kDouble).to(device, at::kFloat).view({1, 3, 1, 1});
  const at::Tensor normalized = (x01 - mean) / deviation;
  record("normalized", normalized);

  // Patches in row-major order after the class token, plus positions.
  const at::Tensor patches = at::conv2d(normalized.to(run), patch_w_, {}, cfg_.patch_size);
  record("patch_embedding_out", patches);
  const int64_t B = patches.size(0);
  at::Tensor x = at::cat({cls_.expand({B, 1, d}), patches.flatten(2).permute({0, 2, 1})}, 1) + pos_;
  record("embeddings", x);
  x = nn::layer_norm(x, pre_norm_w_, pre_norm_b_, cfg_.eps);
  record("pre_norm_out", x);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    const bool first = i == 0;
    const int64_t L = x.size(1);
    at::Tensor h = nn::layer_norm(x, b.norm1_w, b.norm1_b, cfg_.eps);
    if (first) record("block0_norm1_out", h);
    const at::Tensor qkv = b.qkv(h);
    if (first) record("block0_qkv", qkv);
    const at::Tensor heads = qkv.view({B, L, 3, H, hd});
    auto part = [&](int64_t k) { return heads.select(2, k).transpose(1, 2); };  // [B, H, L, hd]
    const at::Tensor core = nn::attention(part(0), part(1), part(2), at::Tensor(), scale).transpose(1, 2);
    if (first) record("block0_attn_core", core);
    const at::Tensor attn = b.proj(core.reshape({B, L, d}));
    if (first) record("block0_attn_out", attn);
    x = x + attn;
    h = nn::layer_norm(x, b.norm2_w, b.norm2_b, cfg_.eps);
    if (first) record("block0_norm2_out", h);
    const at::Tensor mlp = b.fc2(at::gelu(b.fc1(h)));  // exact (erf) GELU
    if (first) record("block0_mlp_out", mlp);
    x = x + mlp;
    record("block" + std::to_string(i) + "_out", x);
  }
  record("visual_out", x);
  return x;
}

}  // namespace kino
