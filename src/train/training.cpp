#include "train/training.h"

namespace kino::train {

at::Tensor render_clip(const world::Scene& s, int size, int frames) {
  std::vector<uint8_t> rgb = world::render(s, size, size, frames);
  return at::from_blob(rgb.data(), {frames, size, size, 3}, at::kByte).to(at::kFloat).permute({3, 0, 1, 2}) / 127.5 - 1;
}

at::Tensor object_mask(const at::Tensor& x, const std::vector<world::Scene>& scenes) {
  std::vector<at::Tensor> bgs;
  for (const auto& s : scenes) {
    const world::Rgb c = world::kBackgrounds[static_cast<size_t>(s.background)].rgb;
    bgs.push_back(at::tensor({c.r / 127.5f - 1, c.g / 127.5f - 1, c.b / 127.5f - 1}).view({3, 1, 1, 1}));
  }
  return ((x - at::stack(bgs).to(x.device())).abs().amax(1, true) > 0.1).to(at::kFloat);
}

at::Tensor latent_object_mask(const at::Tensor& mask, int64_t temporal, int64_t spatial) {
  const at::Tensor m = mask.squeeze(1);  // [B, F, H, W]
  const int64_t B = m.size(0), F = m.size(1), H = m.size(2), W = m.size(3);
  const at::Tensor rest = m.slice(1, 1).reshape({B, (F - 1) / temporal, temporal, H, W}).amax(2);
  return at::max_pool2d(at::cat({m.slice(1, 0, 1), rest}, 1), {spatial, spatial});
}

at::Tensor dilated(const at::Tensor& mask, int64_t radius) {
  const int64_t k = 2 * radius + 1;
  return at::max_pool3d(mask, {1, k, k}, {1, 1, 1}, {0, radius, radius});
}

at::Tensor halo_band(const at::Tensor& mask, int64_t radius) { return dilated(mask, radius) - mask; }

at::Tensor outline_band(const at::Tensor& mask) { return dilated(mask, 1) - (1 - dilated(1 - mask, 1)); }

at::Tensor frame_edge_band(const at::Tensor& mask, int64_t width) {
  const int64_t H = mask.size(3), W = mask.size(4);
  at::Tensor band = at::ones({1, 1, 1, H, W}, mask.options());
  band.slice(3, width, H - width).slice(4, width, W - width).zero_();
  return band;
}

at::Tensor stray_pixels(const at::Tensor& recon, const at::Tensor& x, const at::Tensor& mask) {
  const at::Tensor distance = ((recon - x).pow(2).sum(1, true) + 1e-12).sqrt();
  const int64_t frames = x.size(0) * x.size(2);
  const at::Tensor away = 1 - dilated(mask, 2);  // 3+ pixels from the object
  return ((distance - 0.3).clamp_min(0) * away).pow(2).sum() / frames;
}

at::Tensor object_weighted_rec(const at::Tensor& recon, const at::Tensor& x, const std::vector<world::Scene>& scenes,
                               const RecLoss& loss) {
  const at::Tensor mask = object_mask(x, scenes);
  at::Tensor weight = 1 + 9 * mask;
  if (loss.halo > 0) weight = weight + loss.halo * halo_band(mask, 6);
  if (loss.edge > 0) weight = weight + loss.edge * frame_edge_band(mask, 3);
  const at::Tensor err = recon - x;
  at::Tensor rec = (weight * (err.pow(2) + loss.l1 * err.abs())).sum() / (weight.sum() * 3);
  if (loss.stray > 0) rec = rec + loss.stray * stray_pixels(recon, x, mask);
  return rec;
}

}  // namespace kino::train
