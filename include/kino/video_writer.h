// Writing frames: MP4 (H.264/yuv420p via libavformat) or a PNG sequence
// when the path holds a printf pattern ("frames/out_%04d.png"). Files are
// written under temporary names and renamed when complete.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "kino/pipeline.h"

namespace kino {

// True if `path` contains a printf integer pattern such as %d or %04d.
bool is_frame_pattern(const std::string& path);
// Expands the pattern for one frame index.
std::string frame_path(const std::string& pattern, int64_t index);

// Writes one RGB24 image as a PNG file (atomically).
void write_png(const std::string& path, const uint8_t* rgb, int64_t width, int64_t height);

// Writes `video` to `path`; `metadata` goes into the container (MP4 only).
// Returns the files written.
std::vector<std::string> write_video(const std::string& path, const Video& video,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace kino
