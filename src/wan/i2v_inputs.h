// The conditioning inputs of Wan's image-to-video pipelines (Wan2.1
// image2video.py WanI2V, first_last_frame2video.py WanFLF2V, Wan2.2
// image2video.py): the output size from the first image and the pixel area,
// the mask over the known frames, the video the VAE encodes, FLF2V's fit of
// the last frame to the first. Images are [3, H, W] in [-1, 1].
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

namespace kino {

// (width, height) = `stride` x (lat_w, lat_h), with lat_h =
// round(sqrt(area * h / w) // stride // patch * patch) and lat_w likewise
// from w / h (Python's float floor divisions): the image's aspect ratio
// within `area` pixels.
std::pair<int64_t, int64_t> i2v_output_size(int64_t image_width, int64_t image_height, int64_t area, int64_t stride,
                                            int64_t patch);

// [4, (frames - 1) / 4 + 1, lat_h, lat_w]: 1 on latent frame 0 (all four
// channels; frame 0's mask repeated 4x, then viewed in groups of four); with
// `last`, also on the last latent frame's fourth channel (msk[:, 1:-1] = 0).
at::Tensor i2v_mask(int64_t frames, int64_t lat_h, int64_t lat_w, bool last);

// [3, frames, h, w]: the first image bicubic-resized to h x w (align_corners
// False, no clamp), zeros, and with `last` defined the last image resized
// the same as the final frame.
at::Tensor i2v_vae_input(const at::Tensor& first, const at::Tensor& last, int64_t frames, int64_t h, int64_t w);

// WanFLF2V's fix-up of a last frame whose size differs from the first's:
// scaled sizes [round(W2 r), round(H2 r)], r = max(W1/W2, H1/H2), handed to
// TF.center_crop, which reads them as (height, width) and zero-pads where the
// crop is larger: nothing is resized. The official behaviour, kept.
at::Tensor flf2v_fit_last(const at::Tensor& last, int64_t first_width, int64_t first_height);

}  // namespace kino
