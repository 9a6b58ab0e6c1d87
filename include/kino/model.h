// What a model accepts, read from its manifest without loading a weight:
// the description every family gives of itself (see src/pipeline/
// model_registry.h), which request resolution, the memory estimate and
// `kino model` read. No torch here.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kino/manifest.h"
#include "kino/memory_budget.h"

namespace kino {

struct ModelDescription {
  std::string family, task;
  int64_t frame_multiple = 4;  // frame counts are k * frame_multiple + 1
  int64_t size_multiple = 16;  // widths and heights are multiples of this
  int64_t text_len = 512;      // tokens the text encoder reads
  int64_t trained_frames = 81; // the clip length it was trained on: longer clips run in context windows
  // Conditioning inputs besides the prompt: "image" (a first frame to
  // animate), "last_image" (the last frame), "video", "mask" and
  // "references" (VACE's source video, its mask, subject images); `needs`:
  // those it cannot do without.
  std::vector<std::string> inputs, needs;
  // Transformers that share the denoising (Wan2.2 A14B: 2, the second below
  // boundary_timestep).
  int experts = 1;
  double boundary_timestep = 0;
  // Models whose output size follows a given image: the size for an image
  // of width x height when `area` pixels were asked for (unset: the
  // requested size stays).
  std::function<std::pair<int64_t, int64_t>(int64_t width, int64_t height, int64_t area)> size_for_image;
  // Models whose output follows a source video (VACE): {frames, width,
  // height} for a video of `frames` frames of width x height when `area`
  // pixels were asked for.
  std::function<std::array<int64_t, 3>(int64_t frames, int64_t width, int64_t height, int64_t area)> shape_for_video;
  // The step-caching constants (request/cache_spec.h) this model takes, ""
  // for none: TeaCache and MagCache are refused, EasyCache needs none.
  std::string cache_constants;
  // The shapes of the memory estimate (weight_bytes: from the file headers).
  MemoryModel memory;

  bool takes(const std::string& input) const;
};

// The description of `m`'s family and task; kino::Error, naming the
// manifest and the families and tasks there are, when none is registered.
ModelDescription describe_model(const ModelManifest& m);

}  // namespace kino
