#include "pipeline/resolve.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "kino/error.h"
#include "media/image.h"
#include "media/video_reader.h"
#include "request/cache_spec.h"
#include "request/window_spec.h"
#include "request/settings.h"
#include "sampling/sampler_kind.h"
#include "text/text_clean.h"

namespace kino {

namespace {

std::string model_name(const ModelDescription& m) { return concat("this ", m.family, " ", m.task, " model"); }

// VACE's inputs (a source video, its mask, subject images, the hints'
// scale): each read as far as its frame count and size before anything
// loads; the output's frames and size follow the video.
void resolve_video_inputs(const GenerationRequest& r, const ModelDescription& model, GenerationSettings& s) {
  if (r.references) {
    if (!model.takes("references"))
      throw Error(concat("--reference: ", model_name(model), " takes no reference images (VACE models do)"));
    for (const std::string& file : *r.references) read_image(file);
    s.references = *r.references;
  }
  if (r.context_scale) {
    if (!model.takes("video")) throw Error(concat("--context-scale: ", model_name(model), " has no VACE blocks to scale"));
    check_range(setting("context_scale"), *r.context_scale);
    s.context_scale = *r.context_scale;
  }
  if (r.mask && !r.video) throw Error("--mask needs --video: the mask says which of the video's pixels to keep");
  if (r.video_fps) {
    check_range(setting("video_fps"), *r.video_fps);
    s.video_fps = *r.video_fps;
  }
  if (r.strength) {
    if (!r.video) throw Error("--strength needs --video: it says how much of the video is noised");
    if (model.takes("video"))
      throw Error(concat("--strength: ", model_name(model), " reads the video through its VACE blocks (--context-scale scales them)"));
    check_range(setting("strength"), *r.strength);
    s.strength = *r.strength;
  }
  if (!r.video) return;
  if (!model.takes("video") && !r.strength)
    throw Error(concat("--video: ", model_name(model),
                       " takes a video for video-to-video only: give --strength S (0: the video as it is, 1: text-to-video)"));
  if (r.mask && !model.takes("mask")) throw Error(concat("--mask: ", model_name(model), " takes no mask (VACE models do)"));
  s.video = *r.video;
  const VideoIndex video = index_video(s.video, s.video_fps);
  const auto frames = static_cast<int64_t>(video.times.size());
  if (r.mask) {
    s.mask = *r.mask;
    const VideoIndex mask = index_video(s.mask, s.video_fps);
    if (mask.width != video.width || mask.height != video.height)
      throw Error(concat(s.mask, ": the mask is ", mask.width, "x", mask.height, ", the video ", s.video, " is ", video.width, "x",
                         video.height));
    if (mask.times.size() != video.times.size())
      throw Error(concat(s.mask, ": the mask has ", mask.times.size(), " frames, the video ", s.video, " has ", frames));
  }
  if (r.keep_frames) {
    // An extension: the video's last keep_frames frames kept, then
    // generated up to --frames, at the size the video gives.
    if (!model.takes("video")) throw Error(concat("--keep-frames: ", model_name(model), " cannot keep frames (VACE models can)"));
    if (r.mask) throw Error("--keep-frames makes its own mask: give no --mask");
    if (*r.keep_frames > frames) throw Error(concat("--keep-frames ", *r.keep_frames, ": ", s.video, " has ", frames, " frames"));
    s.keep_frames = *r.keep_frames;
    const std::array<int64_t, 3> shape = model.shape_for_video(frames, video.width, video.height, s.width * s.height);
    if ((r.width || r.height || r.aspect) && (shape[1] != s.width || shape[2] != s.height))
      s.warnings.push_back(concat("the output size follows the video: ", shape[1], "x", shape[2]));
    s.width = shape[1];
    s.height = shape[2];
  } else if (model.shape_for_video) {
    const auto [f, w, h] = model.shape_for_video(frames, video.width, video.height, s.width * s.height);
    if ((r.frames || r.seconds) && f != s.frames) s.warnings.push_back(concat("the frame count follows the video: ", f));
    if ((r.width || r.height || r.aspect) && (w != s.width || h != s.height))
      s.warnings.push_back(concat("the output size follows the video: ", w, "x", h));
    s.frames = f;
    s.width = w;
    s.height = h;
  } else {
    // Video-to-video: as many frames as the video has (4k + 1, spread over
    // it as VACE's processor reads them), at the size asked.
    const int64_t fm = model.frame_multiple;
    const int64_t f = std::min((frames - 1) / fm * fm + 1, static_cast<int64_t>(setting("frames").hi));
    if ((r.frames || r.seconds) && f != s.frames) s.warnings.push_back(concat("the frame count follows the video: ", f));
    s.frames = f;
  }
}

}  // namespace

GenerationSettings resolve_request(const GenerationRequest& r, const GenerationDefaults& d, const ModelDescription& model,
                                   bool strict) {
  GenerationSettings s;
  s.prompt = r.prompt;
  s.negative = r.negative.value_or("");
  if (s.negative.empty()) s.negative = d.negative_prompt;
  s.sampler = sampler_name(parse_sampler(r.sampler.value_or(d.sampler)));
  s.steps = r.steps.value_or(d.steps);
  const CacheSpec cache = parse_cache_spec(r.cache.value_or(d.cache), "--cache");
  if ((cache.method == CacheSpec::Method::TeaCache || cache.method == CacheSpec::Method::MagCache) && model.cache_constants.empty())
    throw Error(concat("--cache ", cache_method_name(cache.method), ": the reference constants exist for ", cache_constant_names(),
                       ", not for this ", model.family, " ", model.task,
                       " model (a manifest may name one with \"cache_constants\"); easycache needs none"));
  s.cache = cache_spec_text(cache);
  s.cfg = r.cfg.value_or(d.cfg);
  // A single --cfg guides both experts, as the official code's single float.
  s.cfg_low_noise = model.experts < 2 ? s.cfg
                    : r.cfg_low_noise ? *r.cfg_low_noise
                    : r.cfg           ? *r.cfg
                                      : d.cfg_low_noise.value_or(d.cfg);
  s.shift = r.shift.value_or(d.shift);
  s.width = r.width.value_or(d.width);
  s.height = r.height.value_or(d.height);
  s.fps = r.fps.value_or(d.fps);
  s.frames = r.frames.value_or(d.frames);
  s.seed = r.seed ? *r.seed : std::random_device{}() | (uint64_t{std::random_device{}()} << 32);

  if (!is_valid_utf8(s.prompt)) throw Error("the prompt is not valid UTF-8");
  if (!is_valid_utf8(s.negative)) throw Error("the negative prompt is not valid UTF-8");
  check_range(setting("steps"), static_cast<double>(s.steps));
  check_range(setting("cfg"), s.cfg);
  check_range(setting("cfg_low_noise"), s.cfg_low_noise);
  check_range(setting("shift"), s.shift);
  check_range(setting("fps"), s.fps);

  const int64_t fm = model.frame_multiple, sm = model.size_multiple;
  if (r.aspect) {
    // Same pixel count as the model's default size, the requested ratio.
    double aw = 0, ah = 0;
    char colon = 0;
    if (std::sscanf(r.aspect->c_str(), "%lf%c%lf", &aw, &colon, &ah) != 3 || colon != ':' || !(aw > 0) || !(ah > 0))
      throw Error(concat("--aspect must look like 16:9, got '", *r.aspect, "'"));
    // Bounded before it becomes a size (a ratio of 1e300 would overflow it).
    if (!(aw / ah >= 1.0 / 16 && aw / ah <= 16))
      throw Error(concat("--aspect must be between 1:16 and 16:1, got '", *r.aspect, "'"));
    const double area = static_cast<double>(d.width) * static_cast<double>(d.height);
    s.width = std::max<int64_t>(sm, std::llround(std::sqrt(area * aw / ah) / sm) * sm);
    s.height = std::max<int64_t>(sm, std::llround(std::sqrt(area * ah / aw) / sm) * sm);
  }
  if (r.seconds) {
    check_range(setting("seconds"), *r.seconds);
    check_range(setting("fps"), s.fps);  // before seconds * fps becomes a frame count
    const int64_t n = std::max<int64_t>(0, std::llround((*r.seconds * s.fps - 1) / fm));
    s.frames = n * fm + 1;
  }
  for (const std::string& input : model.needs)
    if ((input == "image" && !r.image) || (input == "last_image" && !r.last_image))
      throw Error(concat("this ", model.family, " ", model.task, " model needs --", input == "image" ? "image" : "last-image"));
  if (r.last_image) {
    if (!model.takes("last_image"))
      throw Error(concat("--last-image: this ", model.family, " ", model.task, " model takes no last frame (first-last-frame models do)"));
    s.last_image = *r.last_image;
  }
  if (r.image) {
    if (!model.takes("image"))
      throw Error(concat("--image: this ", model.family, " ", model.task, " model does not animate images (image-to-video models do)"));
    s.image = *r.image;
    if (model.size_for_image) {
      const Image img = read_image(s.image);
      const auto [w, h] = model.size_for_image(img.width, img.height, s.width * s.height);
      if ((r.width || r.height || r.aspect) && (w != s.width || h != s.height))
        s.warnings.push_back(concat("the output size follows the image: ", w, "x", h));
      s.width = w;
      s.height = h;
    }
  }
  resolve_video_inputs(r, model, s);
  check_range(setting("frames"), static_cast<double>(s.frames));
  const Setting& side = setting("size");
  if (!in_range(side, static_cast<double>(s.width)) || !in_range(side, static_cast<double>(s.height)))
    throw Error(concat("--size must be between ", side.lo, " and ", side.hi, " on each side, got ", s.width, "x", s.height));
  auto fix = [&](int64_t& value, int64_t valid, const std::string& what, const std::string& rule) {
    if (value == valid) return;
    if (strict) throw Error(concat(what, " must be ", rule, ", got ", value, " (nearest valid: ", valid, ")"));
    s.warnings.push_back(concat(what, " ", value, " is not ", rule, "; using ", valid));
    value = valid;
  };
  fix(s.frames, std::max<int64_t>(0, std::llround(static_cast<double>(s.frames - 1) / fm)) * fm + 1, "--frames",
      concat(fm, "k+1"));
  fix(s.width, std::max<int64_t>(1, std::llround(static_cast<double>(s.width) / sm)) * sm, "width",
      concat("a multiple of ", sm));
  fix(s.height, std::max<int64_t>(1, std::llround(static_cast<double>(s.height) / sm)) * sm, "height",
      concat("a multiple of ", sm));
  s.context_windows = window_spec_text(resolve_window_spec(parse_window_spec(r.context_windows.value_or(""), "--context-windows"),
                                                            s.frames, model.trained_frames, fm));
  if (s.context_windows != "none" && !s.cache.empty())
    throw Error(concat("--cache and context windows (", s.frames, " frames of a model trained on ", model.trained_frames,
                       ") do not combine yet: give --context-windows none or no --cache"));
  if (s.context_windows != "none" && !s.references.empty())
    throw Error("VACE reference images and context windows do not combine: keep --frames within the model's trained length");
  if (s.keep_frames >= s.frames)
    throw Error(concat("--keep-frames ", s.keep_frames, " leaves nothing to generate in ", s.frames, " frames (--frames)"));
  return s;
}

}  // namespace kino
