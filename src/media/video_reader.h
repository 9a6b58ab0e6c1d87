// Videos as model input (VACE's source and mask videos, video-to-video):
// any file FFmpeg reads through kino's video demuxers, or a numbered image
// sequence given as a printf pattern ("frames/%04d.png"). A video is read
// in two passes: its frame times first (nothing kept), then only the frames
// a model picks. Every input is bounded before its frames are kept. No
// torch here.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "media/image.h"

namespace kino {

struct VideoIndex {
  int64_t width = 0, height = 0;
  // Per frame in display order, [start, end] in seconds as decord reports
  // them (float32): a frame ends where the next starts, the last after one
  // frame of the stream's rate.
  std::vector<std::array<float, 2>> times;
};

// Bounds of what kino reads: 65536 frames (68 minutes at 16 fps), 16384
// pixels on a side and 64 megapixels a frame, as for images.
constexpr int64_t kMaxVideoFrames = 65536;

// Whether `path` is an image-sequence pattern (one %d or %0Nd in it).
bool is_image_sequence(const std::string& path);
// The frames of `path` and their times; an image sequence is timed at
// `sequence_fps` and starts at the first number 0..4 that exists.
// kino::Error naming the file for anything unreadable or out of bounds.
VideoIndex index_video(const std::string& path, double sequence_fps);
// The frames `ids` (display order, repeats allowed) as RGB24, in that order.
std::vector<Image> read_video_frames(const std::string& path, const std::vector<int64_t>& ids);

}  // namespace kino
