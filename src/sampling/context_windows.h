// Context windows over latent frames (ComfyUI's comfy/context_windows.py,
// from AnimateDiff's animatediff-cli context.py): which frames each window
// holds at a step, and the weights its prediction is blended with. The
// velocity of a frame is the weighted mean of the windows holding it.
// No torch here.
#pragma once
#include <cstdint>
#include <vector>

#include "request/window_spec.h"

namespace kino {

struct ContextWindows {
  WindowSpec::Schedule schedule = WindowSpec::Schedule::None;
  WindowSpec::Fuse fuse = WindowSpec::Fuse::Pyramid;
  int64_t length = 0, overlap = 0;  // latent frames
  bool freenoise = false;

  // A resolved spec (pixel frames) in latent frames of `temporal_stride`.
  static ContextWindows from_spec(const WindowSpec& spec, int64_t temporal_stride);
  bool active(int64_t frames) const { return schedule != WindowSpec::Schedule::None && frames > length; }

  // The windows of a clip of `frames` latent frames at sampling step `step`:
  // static: from 0 in strides of length - overlap, the last moved back to
  // end on the clip's last frame; uniform: the same stride with an offset
  // that changes every step (ordered halving of the step), windows that
  // would wrap moved to the end and repeats dropped; looped: windows wrap
  // around the end (a seamless loop). Each window holds `length` frames.
  std::vector<std::vector<int64_t>> windows(int64_t frames, int64_t step) const;
  // The blend weight of each position of `window`: pyramid (1, 2, ..., up
  // to the middle and back down), flat (1), linear (ramps over the overlap
  // on the sides that have a neighbour; WanVideoWrapper's).
  std::vector<double> weights(const std::vector<int64_t>& window, int64_t frames) const;
  // FreeNoise (Qiu et al.; ComfyUI's apply_freenoise): the noise of each
  // window's new frames is the previous window's noise in a seeded
  // permutation, so that windows start from related noise. Returns, per
  // latent frame, the frame whose noise it takes.
  std::vector<int64_t> freenoise_sources(int64_t frames, uint64_t seed) const;
};

}  // namespace kino
