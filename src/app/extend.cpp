#include "kino/extend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kino/error.h"
#include "kino/video_writer.h"
#include "media/image.h"
#include "media/video_reader.h"
#include "request/settings.h"

namespace kino {

namespace {

std::string model_name(const ModelDescription& m) { return concat("this ", m.family, " ", m.task, " model"); }

// An image scaled to cover width x height (Lanczos) and center-cropped.
Image cover(const Image& in, int64_t width, int64_t height) {
  if (in.width == width && in.height == height) return in;
  const double scale = std::max(static_cast<double>(width) / static_cast<double>(in.width),
                                static_cast<double>(height) / static_cast<double>(in.height));
  const int64_t w = std::max(width, static_cast<int64_t>(std::llround(scale * static_cast<double>(in.width))));
  const int64_t h = std::max(height, static_cast<int64_t>(std::llround(scale * static_cast<double>(in.height))));
  const Image big = resize_lanczos(in, w, h);
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width * height * 3));
  const int64_t x0 = (w - width) / 2, y0 = (h - height) / 2;
  for (int64_t y = 0; y < height; ++y)
    std::memcpy(&out.rgb[static_cast<size_t>(y * width * 3)], &big.rgb[static_cast<size_t>(((y + y0) * w + x0) * 3)],
                static_cast<size_t>(width * 3));
  return out;
}

}  // namespace

ExtensionPlan plan_extension(const ModelDescription& model, const GenerationDefaults& defaults, const std::string& input,
                             GenerationRequest& request, const std::string& temp_dir) {
  const double fps = request.video_fps.value_or(16);
  const auto n = static_cast<int64_t>(index_video(input, fps).times.size());
  const auto most = static_cast<int64_t>(setting("frames").hi);
  if (n > most) throw Error(concat(input, ": ", n, " frames; kino extend continues clips of up to ", most));
  ExtensionPlan plan;
  if (model.takes("video")) {
    const int64_t frames = request.frames.value_or(defaults.frames);
    const int64_t keep = request.keep_frames.value_or(std::min(n, std::max<int64_t>(1, (frames - 1) / 2)));
    request.video = input;
    request.keep_frames = keep;
    plan.lead_in = n - std::min(keep, n);
    plan.how = concat("keeping the last ", keep, " frames of ", input, " under a VACE extension mask, generating the rest of ", frames);
    return plan;
  }
  if (model.takes("image") && !model.takes("last_image")) {
    if (request.image) throw Error("kino extend starts from the video's last frame: give no --image");
    const std::vector<Image> last = read_video_frames(input, {n - 1});
    Video v;
    v.frames = 1;
    v.width = last[0].width;
    v.height = last[0].height;
    v.fps = 1;
    v.rgb = last[0].rgb;
    const std::string png = temp_dir + "/last_frame_%04d.png";
    write_video(png, v, {});
    request.image = frame_path(png, 0);
    plan.lead_in = n - 1;
    plan.how = concat("starting from the last frame of ", input, " (image-to-video)");
    return plan;
  }
  throw Error(concat("kino extend: ", model_name(model),
                     " can neither keep frames (VACE models can) nor start from an image (image-to-video models can)"));
}

Video lead_in_frames(const std::string& input, int64_t count, int64_t width, int64_t height, double fps) {
  Video v;
  v.width = width;
  v.height = height;
  v.fps = fps;
  if (count <= 0) return v;
  std::vector<int64_t> ids(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) ids[static_cast<size_t>(i)] = i;
  for (const Image& frame : read_video_frames(input, ids)) {
    const Image fitted = cover(frame, width, height);
    v.rgb.insert(v.rgb.end(), fitted.rgb.begin(), fitted.rgb.end());
    ++v.frames;
  }
  return v;
}

}  // namespace kino
