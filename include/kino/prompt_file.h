// The inputs a render pipeline hands kino besides the prompt: prompt files
// (plain text or JSON Lines) and storyboards. Everything is validated here,
// before a model is loaded, with errors naming file, line and field.
// No torch here.
#pragma once
#include <cstdint>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/request.h"

namespace kino {

// One entry of a prompt file.
struct BatchItem {
  int64_t index = 0;  // 0-based, in file order (blank and comment lines skipped)
  int64_t line = 0;   // 1-based line number
  GenerationRequest request;
  std::string preset, output_name;
  std::string error;  // set if the line could not be read
};

// Plain text (one prompt a line; blank lines and '#' comments skipped) or
// JSON Lines (a line starting with '{'); "-" reads standard input. A bad line
// becomes an item with `error` set, so the rest of a batch still runs.
std::vector<BatchItem> read_prompt_file(const std::string& path);
// The same from a stream; `name` names it in errors.
std::vector<BatchItem> parse_prompt_file(std::istream& in, const std::string& name);

// A storyboard file: {"crossfade": seconds, "shots": [{"prompt": ..., and
// any setting a prompt file's line takes but "output"}, ...]}.
struct StoryboardShot {
  GenerationRequest request;  // the shot's own settings
  std::string preset;
};
struct Storyboard {
  double crossfade = 0;
  // One continuous video whose prompt changes shot by shot (prompt travel
  // over context windows) instead of separate shots joined.
  bool continuous = false;
  std::vector<StoryboardShot> shots;
};
Storyboard read_storyboard(const std::string& path);
Storyboard parse_storyboard(const std::string& text, const std::string& name);

}  // namespace kino
