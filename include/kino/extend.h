// `kino extend IN PROMPT`: a clip continued by whichever means the model
// has, and written as IN followed by the continuation. No torch here.
#pragma once
#include <cstdint>
#include <string>

#include "kino/model.h"
#include "kino/request.h"
#include "kino/video.h"

namespace kino {

struct ExtensionPlan {
  std::string how;          // for the log: how the model continues IN
  int64_t lead_in = 0;      // IN's first frames written before the generated video
};

// Sets `request` up to continue `input`: a VACE model keeps IN's last
// frames under an extension mask (--keep-frames, default half of --frames,
// at most IN's length) and generates the rest of --frames after them; an
// image-to-video model starts from IN's last frame (written as a PNG into
// `temp_dir`). A model that can do neither is refused, naming it.
ExtensionPlan plan_extension(const ModelDescription& model, const GenerationDefaults& defaults, const std::string& input,
                             GenerationRequest& request, const std::string& temp_dir);

// IN's first `count` frames at width x height (scaled to cover, Lanczos,
// center-cropped), at `fps`.
Video lead_in_frames(const std::string& input, int64_t count, int64_t width, int64_t height, double fps);

}  // namespace kino
