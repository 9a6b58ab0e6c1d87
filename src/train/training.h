// kino-train's tensors of the synthetic world and its losses (kino-tiny):
// rendered clips, object masks in pixels and latent cells, and what the VAE
// is trained to get right. Clips are float32 in [-1, 1].
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "world/world.h"

namespace kino::train {

// A scene rendered as a float clip [3, frames, size, size] in [-1, 1].
at::Tensor render_clip(const world::Scene& s, int size, int frames);

// 1 where a pixel of clips `x` [B, 3, F, H, W] is farther than 0.1 from its
// scene's background colour (the object), else 0: [B, 1, F, H, W].
at::Tensor object_mask(const at::Tensor& x, const std::vector<world::Scene>& scenes);

// The object mask at latent resolution: a latent cell is 1 where any pixel it
// encodes is (the VAE's causal grouping: frame 0 alone, then `temporal`
// frames per latent frame; `spatial` x `spatial` pixels per cell).
// [B, F', H', W'].
at::Tensor latent_object_mask(const at::Tensor& mask, int64_t temporal, int64_t spatial);

// The object mask grown by `radius` pixels in every frame. [B, 1, F, H, W].
at::Tensor dilated(const at::Tensor& mask, int64_t radius);

// The cells within one cell of the object's outline, inside and outside, in
// every frame of a latent object mask [B, 1, F', H', W']: where a square and
// a circle of the same size and place differ (measured: with the object's
// cells weighted alone, the DiT draws the same blob for both, whatever the
// guidance).
at::Tensor outline_band(const at::Tensor& mask);

// The background pixels within `radius` pixels of the object in the same
// frame: where an undertrained decoder leaves dark halos and ghosts of the
// object's previous position (eval-vae strips), which the evaluation's "far
// from the background" test counts as object. [B, 1, F, H, W].
at::Tensor halo_band(const at::Tensor& mask, int64_t radius);

// The outer `width` pixels of every frame of `mask`'s shape [B, 1, F, H, W]:
// where zero padding made the decoder leave bright corner pixels and, in the
// first frame, a bright top row (eval-vae strips: distance 50-110 from the
// background, which the evaluation counts as object and so stretches the
// object's bounding box over the frame). [1, 1, 1, H, W].
at::Tensor frame_edge_band(const at::Tensor& mask, int64_t width);

// The terms of object_weighted_rec beyond its object weighting.
struct RecLoss {
  double halo = 0;  // extra weight of the halo band (halo_band, radius 6)
  double edge = 0;  // extra weight of the frame's edge band (frame_edge_band, 3 pixels)
  double l1 = 0.1;  // weight of the absolute error beside the squared error
  double stray = 0;  // weight of stray_pixels
};

// Background pixels 3 or more pixels away from the object that are decoded
// farther than 0.3 (RGB distance in [-1, 1] units, ~38 of 255) from the
// background: the sum over pixels of the squared excess, per frame. The
// evaluation counts a pixel at distance >= 60/255 as object, and one such
// pixel in a corner stretches the object's bounding box over the frame
// (measured: a bright corner pixel in most clips on dark backgrounds, fill
// ratio 0.1 instead of 0.8); being a sum, not a mean, one such pixel costs
// the same in a frame of any size. Pixels nearer the object are where its
// edge is placed, which the reconstruction loss weighs. `mask` is
// object_mask's.
at::Tensor stray_pixels(const at::Tensor& recon, const at::Tensor& x, const at::Tensor& mask);

// Reconstruction loss (squared error + `loss.l1` x absolute error) with the
// object's pixels weighted 10x: objects cover a few percent of a frame, and
// unweighted the VAE settles for the right background and a washed-out
// object of the wrong hue (measured on decoded clips). Plus `loss.stray` x
// stray_pixels.
at::Tensor object_weighted_rec(const at::Tensor& recon, const at::Tensor& x, const std::vector<world::Scene>& scenes,
                               const RecLoss& loss = {});

}  // namespace kino::train
