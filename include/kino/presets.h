// Style presets: small JSON objects that add prompt text, negative text and
// optional settings. Built-ins ship inside kino; user presets are *.json
// files in $KINO_PRESETS or ~/.config/kino/presets (a user preset overrides
// a built-in of the same name).
//
//   {"name": "film-noir", "description": "...", "prompt_suffix": ", black and white film noir, ...",
//    "prompt_prefix": "", "negative": "colour, ...", "settings": {"cfg": 6.0}}
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/pipeline.h"

namespace kino {

struct Preset {
  std::string name, description, prompt_prefix, prompt_suffix, negative, source;
  nlohmann::json settings = nlohmann::json::object();  // steps, cfg, shift, sampler, ...
};

std::map<std::string, Preset> load_presets();
const Preset& find_preset(const std::map<std::string, Preset>& presets, const std::string& name);
Preset parse_preset(const nlohmann::json& j, const std::string& source);

// Applies a preset to a request: wraps the prompt, appends the negative text
// to the user's negative, fills settings the user did not set.
void apply_preset(const Preset& preset, GenerationRequest& request);

// "WIDTHxHEIGHT" -> (width, height); false if it does not look like that.
bool parse_size(const std::string& text, int64_t& width, int64_t& height);

// Per-item overrides from a JSON object (JSONL batch lines, storyboard shots,
// preset settings): prompt, negative, seed, steps, cfg, shift, sampler,
// size "WxH", width, height, frames, fps. Unknown keys are an error naming
// them unless listed in `allowed_extra`.
void apply_overrides(const nlohmann::json& j, GenerationRequest& request, const std::string& where,
                     const std::vector<std::string>& allowed_extra = {}, bool only_unset = false);

}  // namespace kino
