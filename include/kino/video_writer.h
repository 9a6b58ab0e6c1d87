// Writing frames: MP4 (H.264/yuv420p via libavformat) or a PNG sequence
// when the path holds a printf pattern ("frames/out_%04d.png"). Files are
// written under temporary names and renamed when complete.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "kino/video.h"

namespace kino {

// True if `path` contains a printf integer pattern such as %d or %04d.
bool is_frame_pattern(const std::string& path);
// Expands the pattern for one frame index.
std::string frame_path(const std::string& pattern, int64_t index);

// Writes one RGB24 image as a PNG file (atomically).
void write_png(const std::string& path, const uint8_t* rgb, int64_t width, int64_t height);

struct WriteOptions {
  std::string format;  // "" (from the name), "mp4" or "y4m" (for "-", standard output)
  std::string audio;   // an audio file to mux (AAC), cut or padded to the video
};

// Writes `video` to `path` ("-": standard output, fragmented MP4 or Y4M);
// `metadata` goes into the container. Returns the files written.
std::vector<std::string> write_video(const std::string& path, const Video& video,
                                     const std::map<std::string, std::string>& metadata, const WriteOptions& options = {});

// What write_video would refuse in `options` before any frame exists: an
// --audio beside an output without a container (Y4M, PNG frames), an audio
// file that does not open as audio. For checking before generating.
void check_write_options(const std::string& path, const WriteOptions& options);

// FFmpeg's own log output: errors only, or everything when `verbose`.
void set_media_log_level(bool verbose);

// The container-level metadata tags of a video file.
std::map<std::string, std::string> read_metadata(const std::string& path);

}  // namespace kino
