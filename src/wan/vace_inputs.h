// The inputs of Wan2.1 VACE (wan/vace.py WanVace, wan/utils/vace_processor.py):
// which frames of a source video it reads and at what size, the mask's
// latent channels, reference images fitted to the frame size, the source
// frames resized. Videos are [3, T, H, W] in [-1, 1], masks [T, H, W] in
// [0, 1] (1: generate).
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

namespace kino {

// What VaceVideoProcessor (keep_last=True, as generate.py builds it) makes
// of a video of `frames` frames of width x height for an output of `area`
// pixels: 4k + 1 frames, at most one per 4 of the video's and at most
// seq_len = area / 256 * 21 tokens in all, at width x height (multiples of
// 16, the video's aspect ratio, within area / 256 tokens a frame).
struct VaceSource {
  int64_t frames = 0, width = 0, height = 0;
};
VaceSource vace_source(int64_t frames, int64_t width, int64_t height, int64_t area);
// The video frames VaceVideoProcessor reads for `frames` output frames:
// for each of linspace(0, duration, frames), the first frame whose [start,
// end] (`times`, float32 seconds) holds it, duration the mean of the last
// frame's; frame 0 where none does (np.argmax of an all-false row).
std::vector<int64_t> vace_frame_ids(const std::vector<std::array<float, 2>>& times, int64_t frames);

// VaceVideoProcessor.resize_crop: RGB24 frames [T, h, w, 3] (uint8) scaled
// to cover height x width (bicubic, antialiased, rounded to uint8 as torch
// 2.x does for uint8 input), center-cropped, as [3, T, height, width] in
// [-1, 1]. Unchanged frames are only normalised.
at::Tensor vace_resize_crop(const at::Tensor& frames_u8, int64_t height, int64_t width);

// The pixel frame each latent frame's mask comes from: F.interpolate(...,
// mode='nearest-exact') from T frames to (T + 3) / 4.
std::vector<int64_t> vace_mask_time_index(int64_t frames);

// vace_encode_masks: mask [T, H, W] as 64 channels (8 x 8 pixel phases,
// channel = 8 row phase + column phase) over the latent grid, the latent
// frames nearest-exact sampled in time, `references` zero frames in front:
// [64, references + (T + 3) / 4, H / 8, W / 8]. The raw values (not
// binarised).
at::Tensor vace_mask_latent(const at::Tensor& mask, int64_t references);

// prepare_source's reference image [3, h, w] on a frame of height x width:
// unchanged at that size, else scaled by min(height / h, width / w)
// (bilinear, no antialias) and centered on white (1.0), [3, height, width].
at::Tensor vace_reference(const at::Tensor& image, int64_t height, int64_t width);

}  // namespace kino
