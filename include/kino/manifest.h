// A model is described by a kino.json manifest (format in README.md): its
// family and task, the component files (paths relative to the manifest),
// their configs and the generation defaults; or by a release folder that a
// family recognises (Wan's official and Diffusers folders). No torch here.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "kino/request.h"

namespace kino {

// A component's weight file as read once at load_manifest: the layout its
// names are in and their official spelling (src/loading/layouts.h).
struct WeightIndex;

struct ModelManifest {
  std::string path;    // the manifest file
  std::string name;    // e.g. "wan2.1-t2v-1.3b"
  std::string family;  // "wan2.1", "wan2.2", or another registered family
  std::string task;    // what the model does: "t2v", "ti2v" (text and image to video), ...
  std::string tokenizer;
  std::string text_encoder, transformer, vae;  // weight files (absolute)
  nlohmann::json text_encoder_config, transformer_config, vae_config;
  // Wan2.2 A14B: a second, low-noise expert, which denoises the steps whose
  // timestep is below boundary_ratio * 1000 ("transformer" takes the rest).
  std::string transformer_low_noise;  // "" for one-transformer models
  nlohmann::json transformer_low_noise_config;
  double boundary_ratio = 0;
  // Wan2.1 I2V/FLF2V: the CLIP image encoder ("" for models without one).
  std::string image_encoder;
  nlohmann::json image_encoder_config;
  GenerationDefaults defaults;
  // Per weight file (when the weights were required): its layout and names.
  std::map<std::string, std::shared_ptr<const WeightIndex>> weight_index;
};

// `path`: a kino.json file, or a folder holding one, or a release folder.
// `weights_required`: false for runs on random weights (kino-bench), where
// only the tokenizer must exist.
ModelManifest load_manifest(const std::string& path, bool weights_required = true);
// The same from the manifest's text; `path` names it in errors and anchors
// the relative component paths.
ModelManifest parse_manifest(const std::string& text, const std::string& path, bool weights_required = true);

// The layout the weights of `m`'s `component` ("transformer", ...) are in
// ("official", "diffusers", "comfyui", "huggingface"; "" when not read).
std::string weight_layout(const ModelManifest& m, const std::string& component);

// A complete manifest for `m` (absolute paths, every config field found):
// what `kino model --json` prints, and a kino.json that loads as `m`.
nlohmann::json manifest_json(const ModelManifest& m);

}  // namespace kino
