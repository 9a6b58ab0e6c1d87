#include "wan/vace_inputs.h"

#include <algorithm>
#include <cmath>

#include "kino/error.h"

namespace kino {

namespace {

constexpr int64_t kTokenSide = 16;  // VAE stride 8 x patch 2 (downsample (4, 16, 16))
constexpr int64_t kFrameStride = 4;

}  // namespace

VaceSource vace_source(int64_t n, int64_t width, int64_t height, int64_t area) {
  if (n < 1) throw Error("a source video needs at least one frame");
  // prepare_source's seq_len: 32760 = 480 * 832 / 256 * 21 and 75600 = 720 *
  // 1280 / 256 * 21 for the two official areas; the same rule for others.
  const int64_t seq_len = area / (kTokenSide * kTokenSide) * 21;
  const double area_z = std::min({static_cast<double>(seq_len), static_cast<double>(area) / (kTokenSide * kTokenSide),
                                  static_cast<double>((height / kTokenSide) * (width / kTokenSide))});
  if (!(area_z >= 1)) throw Error(concat("a ", width, "x", height, " video has no VACE size within ", area, " pixels"));
  const int64_t latent_frames = std::min<int64_t>((n - 1) / kFrameStride + 1, static_cast<int64_t>(static_cast<double>(seq_len) / area_z));
  const double target_area_z = std::min(area_z, static_cast<double>(seq_len / latent_frames));
  // Python's round (half to even) of a float64, then int() (truncation).
  const auto rows = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area_z * static_cast<double>(height) / static_cast<double>(width))));
  if (rows < 1) throw Error(concat("a ", width, "x", height, " video is too wide for a VACE frame within ", area, " pixels"));
  const auto cols = static_cast<int64_t>(target_area_z / static_cast<double>(rows));
  if (cols < 1) throw Error(concat("a ", width, "x", height, " video is too tall for a VACE frame within ", area, " pixels"));
  return {(latent_frames - 1) * kFrameStride + 1, cols * kTokenSide, rows * kTokenSide};
}

std::vector<int64_t> vace_frame_ids(const std::vector<std::array<float, 2>>& times, int64_t frames) {
  if (times.empty()) throw Error("a source video needs at least one frame");
  const double duration = static_cast<double>((times.back()[0] + times.back()[1]) / 2.0f);
  const double step = frames > 1 ? duration / static_cast<double>(frames - 1) : 0.0;
  std::vector<int64_t> ids;
  for (int64_t k = 0; k < frames; ++k) {
    const double t = k > 0 && k + 1 == frames ? duration : static_cast<double>(k) * step;  // linspace's last is `stop`
    int64_t id = 0;
    for (size_t i = 0; i < times.size(); ++i)
      if (t >= static_cast<double>(times[i][0]) && t <= static_cast<double>(times[i][1])) {
        id = static_cast<int64_t>(i);
        break;
      }
    ids.push_back(id);
  }
  return ids;
}

at::Tensor vace_resize_crop(const at::Tensor& frames_u8, int64_t height, int64_t width) {
  at::Tensor video = frames_u8.permute({0, 3, 1, 2});  // [T, 3, h, w]
  const int64_t ih = video.size(2), iw = video.size(3);
  if (ih != height || iw != width) {
    const double scale = std::max(static_cast<double>(width) / static_cast<double>(iw), static_cast<double>(height) / static_cast<double>(ih));
    const auto rh = static_cast<int64_t>(std::nearbyint(scale * static_cast<double>(ih)));
    const auto rw = static_cast<int64_t>(std::nearbyint(scale * static_cast<double>(iw)));
    video = at::_upsample_bicubic2d_aa(video.to(at::kFloat), {rh, rw}, false).round().clamp(0, 255);
    const int64_t x1 = (rw - width) / 2, y1 = (rh - height) / 2;
    video = video.slice(2, y1, y1 + height).slice(3, x1, x1 + width);
  }
  return video.transpose(0, 1).to(at::kFloat).div(127.5).sub(1.0).contiguous();
}

std::vector<int64_t> vace_mask_time_index(int64_t frames) {
  const int64_t latent = (frames + 3) / kFrameStride;
  // nearest_neighbor_exact_compute_source_index: a float scale, floorf.
  const float scale = static_cast<float>(frames) / static_cast<float>(latent);
  std::vector<int64_t> index;
  for (int64_t j = 0; j < latent; ++j)
    index.push_back(std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>((static_cast<double>(j) + 0.5) * scale))), frames - 1));
  return index;
}

at::Tensor vace_mask_latent(const at::Tensor& mask, int64_t references) {
  const int64_t T = mask.size(0), H = mask.size(1), W = mask.size(2), s = 8;
  if (H % (2 * s) || W % (2 * s)) throw Error(concat("a VACE mask of ", W, "x", H, " is not a multiple of 16 pixels"));
  const at::Tensor phases = mask.reshape({T, H / s, s, W / s, s}).permute({2, 4, 0, 1, 3}).reshape({s * s, T, H / s, W / s});
  const at::Tensor m = phases.index_select(1, at::tensor(vace_mask_time_index(T), at::kLong).to(mask.device()));
  return at::cat({at::zeros({s * s, references, H / s, W / s}, m.options()), m}, 1);
}

at::Tensor vace_reference(const at::Tensor& image, int64_t height, int64_t width) {
  const int64_t h = image.size(1), w = image.size(2);
  if (h == height && w == width) return image;
  const double scale = std::min(static_cast<double>(height) / static_cast<double>(h), static_cast<double>(width) / static_cast<double>(w));
  const auto nh = static_cast<int64_t>(static_cast<double>(h) * scale), nw = static_cast<int64_t>(static_cast<double>(w) * scale);
  if (nh < 1 || nw < 1) throw Error(concat("a reference image of ", w, "x", h, " does not fit a ", width, "x", height, " frame"));
  const at::Tensor resized = at::upsample_bilinear2d(image.unsqueeze(0).to(at::kFloat), {nh, nw}, false)[0];
  at::Tensor canvas = at::ones({3, height, width}, resized.options());
  const int64_t top = (height - nh) / 2, left = (width - nw) / 2;
  canvas.slice(1, top, top + nh).slice(2, left, left + nw).copy_(resized);
  return canvas;
}

}  // namespace kino
