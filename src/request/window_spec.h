// Context windows as asked for (`--context-windows`, a preset's or batch
// line's "context_windows"): how a clip longer than the model's trained
// length is denoised in overlapping windows. No torch here; the windows
// themselves are sampling/context_windows.h.
#pragma once
#include <cstdint>
#include <string>

namespace kino {

struct WindowSpec {
  enum class Schedule { Auto, None, Static, Uniform, Looped };
  enum class Fuse { Pyramid, Flat, Linear };
  Schedule schedule = Schedule::Auto;
  int64_t length = 0;    // pixel frames, 4k + 1 (0: the model's trained length)
  int64_t overlap = -1;  // pixel frames (-1: 3/8 of the length, rounded to whole latent frames)
  Fuse fuse = Fuse::Pyramid;
  bool freenoise = false;
};

// "" or "auto" (windows when the clip is longer than the model was trained
// on), "none", or "SCHEDULE[:LENGTH][,overlap=N][,fuse=pyramid|flat|linear]
// [,freenoise]" with SCHEDULE static, uniform or looped. kino::Error naming
// `where` for anything else.
WindowSpec parse_window_spec(const std::string& text, const std::string& where);
// The canonical spelling: "" (auto), "none", or every field given.
std::string window_spec_text(const WindowSpec& spec);

// What `spec` means for a clip of `frames` pixel frames on a model trained
// on `trained_frames`: Auto becomes Static (or None when the clip fits),
// the length and overlap are filled and checked (4k + 1 frames, the overlap
// shorter than the length). The result is None or fully given.
WindowSpec resolve_window_spec(const WindowSpec& spec, int64_t frames, int64_t trained_frames, int64_t frame_multiple);

}  // namespace kino
