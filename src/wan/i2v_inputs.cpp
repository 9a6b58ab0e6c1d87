#include "wan/i2v_inputs.h"

#include <algorithm>
#include <cmath>

#include "kino/error.h"

namespace kino {

std::pair<int64_t, int64_t> i2v_output_size(int64_t image_width, int64_t image_height, int64_t area, int64_t stride,
                                            int64_t patch) {
  const double ratio = static_cast<double>(image_height) / static_cast<double>(image_width);
  auto latent = [&](double r) {
    const double s = std::sqrt(static_cast<double>(area) * r);
    return static_cast<int64_t>(std::nearbyint(std::floor(std::floor(s / stride) / patch) * patch));
  };
  const int64_t lat_h = latent(ratio), lat_w = latent(1.0 / ratio);
  if (lat_h < patch || lat_w < patch)
    throw Error(concat("an image of ", image_width, "x", image_height, " has no video size within ", area, " pixels"));
  return {lat_w * stride, lat_h * stride};
}

at::Tensor i2v_mask(int64_t frames, int64_t lat_h, int64_t lat_w, bool last) {
  at::Tensor msk = at::ones({1, frames, lat_h, lat_w});
  if (last) msk.slice(1, 1, frames - 1).zero_();
  else msk.slice(1, 1).zero_();
  msk = at::cat({at::repeat_interleave(msk.slice(1, 0, 1), 4, 1), msk.slice(1, 1)}, 1);
  return msk.view({1, msk.size(1) / 4, 4, lat_h, lat_w}).transpose(1, 2)[0];
}

at::Tensor i2v_vae_input(const at::Tensor& first, const at::Tensor& last, int64_t frames, int64_t h, int64_t w) {
  auto resized = [&](const at::Tensor& img) {
    return at::upsample_bicubic2d(img.to(at::kCPU, at::kFloat).unsqueeze(0), {h, w}, false).transpose(0, 1);  // [3, 1, h, w]
  };
  const int64_t known = last.defined() ? 2 : 1;
  std::vector<at::Tensor> parts = {resized(first), at::zeros({3, frames - known, h, w})};
  if (last.defined()) parts.push_back(resized(last));
  return at::cat(parts, 1);
}

at::Tensor flf2v_fit_last(const at::Tensor& last, int64_t first_width, int64_t first_height) {
  const int64_t W2 = last.size(2), H2 = last.size(1);
  if (W2 == first_width && H2 == first_height) return last;
  const double r = std::max(static_cast<double>(first_width) / static_cast<double>(W2),
                            static_cast<double>(first_height) / static_cast<double>(H2));
  // TF.center_crop(img, [a, b]): a is the crop's height, b its width.
  const int64_t crop_h = static_cast<int64_t>(std::nearbyint(static_cast<double>(W2) * r));
  const int64_t crop_w = static_cast<int64_t>(std::nearbyint(static_cast<double>(H2) * r));
  at::Tensor img = last;
  int64_t ih = H2, iw = W2;
  if (crop_w > iw || crop_h > ih) {
    const int64_t left = crop_w > iw ? (crop_w - iw) / 2 : 0, top = crop_h > ih ? (crop_h - ih) / 2 : 0;
    const int64_t right = crop_w > iw ? (crop_w - iw + 1) / 2 : 0, bottom = crop_h > ih ? (crop_h - ih + 1) / 2 : 0;
    img = at::constant_pad_nd(img, {left, right, top, bottom}, 0);
    ih = img.size(1);
    iw = img.size(2);
    if (crop_w == iw && crop_h == ih) return img;
  }
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(ih - crop_h) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(iw - crop_w) / 2.0));
  return img.slice(1, top, top + crop_h).slice(2, left, left + crop_w);
}

}  // namespace kino
