// Storyboards: several shots rendered with one loaded model and joined, with
// an optional crossfade, into one video that records every shot's settings.
// Shots take their settings by layered_request (runner.h), their seed
// defaulting to the command line's + the shot's index. Torch-free.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "kino/pipeline.h"
#include "kino/presets.h"
#include "kino/prompt_file.h"
#include "kino/runner.h"

namespace kino {

struct StoryboardOptions {
  GenerationRequest command_line;  // the command line's settings
  std::string preset;              // the command line's preset
  RunOptions run;
};

// Every shot resolved first (a bad shot fails before anything renders, and
// all must share size and fps), then rendered, joined and written to
// `output` with provenance: the joined video's kino_settings and every
// shot's under kino_storyboard. `name` names the storyboard in errors.
// Returns the record printed by --json: path, files, shots, frames, model.
nlohmann::json render_storyboard(Pipeline& pipeline, const Storyboard& board, const std::string& name,
                                 const std::map<std::string, Preset>& presets, const std::string& output,
                                 const StoryboardOptions& options);

}  // namespace kino
