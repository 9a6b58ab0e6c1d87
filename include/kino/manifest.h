// A model is described by a kino.json manifest (format in README.md): the
// component files (paths relative to the manifest), their configs and the
// generation defaults. No torch here.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kino {

struct GenerationDefaults {
  std::string sampler = "unipc";
  int64_t steps = 50;
  double cfg = 5.0;
  std::optional<double> cfg_low_noise;  // two-expert models: the low-noise expert's scale (unset: cfg)
  double shift = 5.0;
  int64_t width = 832, height = 480, frames = 81;
  double fps = 16;
  std::string negative_prompt;
};

struct ModelManifest {
  std::string path;    // the manifest file
  std::string name;    // e.g. "wan2.1-t2v-1.3b"
  std::string family;  // "wan2.1" or "wan2.2"
  std::string tokenizer;
  std::string text_encoder, transformer, vae;  // weight files (absolute)
  nlohmann::json text_encoder_config, transformer_config, vae_config;
  // Wan2.2 A14B: a second, low-noise expert, which denoises the steps whose
  // timestep is below boundary_ratio * 1000 ("transformer" takes the rest).
  std::string transformer_low_noise;  // "" for one-transformer models
  nlohmann::json transformer_low_noise_config;
  double boundary_ratio = 0;
  GenerationDefaults defaults;
};

// `path`: a kino.json file, or a folder holding one.
// `weights_required`: false for runs on random weights (kino-bench), where
// only the tokenizer must exist.
ModelManifest load_manifest(const std::string& path, bool weights_required = true);
// The same from the manifest's text; `path` names it in errors and anchors
// the relative component paths.
ModelManifest parse_manifest(const std::string& text, const std::string& path, bool weights_required = true);

// A complete manifest for `m` (absolute paths, every config field found):
// what `kino model --json` prints, and a kino.json that loads as `m`.
nlohmann::json manifest_json(const ModelManifest& m);

}  // namespace kino
