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

#include "kino/manifest.h"
#include "kino/request.h"

namespace kino {

struct Preset {
  std::string name, description, prompt_prefix, prompt_suffix, negative, source;
  nlohmann::json settings = nlohmann::json::object();  // steps, cfg, shift, sampler, ...
  // LoRAs the preset brings (a user preset: files in its own folder),
  // merged when the model loads: a preset for a whole run, not per item.
  std::vector<LoraSpec> loras;
};

std::map<std::string, Preset> load_presets();
const Preset& find_preset(const std::map<std::string, Preset>& presets, const std::string& name);
Preset parse_preset(const nlohmann::json& j, const std::string& source);

// Applies a preset to a request: wraps the prompt, appends the negative text
// to the user's negative, fills settings the user did not set.
void apply_preset(const Preset& preset, GenerationRequest& request);

}  // namespace kino
