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
#include <vector>

#include "kino/request.h"

namespace kino {

// A component's weight file as read once at load_manifest: the layout its
// names are in and their official spelling (src/loading/layouts.h).
struct WeightIndex;
// A LoRA file planned against one transformer (src/adapters/lora_plan.h).
struct LoraPlan;

// A LoRA adapter as asked for: a .safetensors file, its strength, and which
// transformers it patches.
struct LoraSpec {
  std::string path;
  double strength = 1.0;
  std::string expert;  // "": every transformer; "high_noise" / "low_noise": one expert of a two-expert model
};
// "FILE[:STRENGTH]" (the suffix is a strength only if it parses as a
// number) for `expert`.
LoraSpec parse_lora_spec(const std::string& arg, const std::string& expert = "");
// A "loras" list of a JSON file (a manifest, a preset): at most 64 entries,
// each "file[:strength]" or {"file", "strength", "expert"}; file names are
// relative to `folder` (with `inside`, they must stay inside it: no
// absolute path, no "..").
std::vector<LoraSpec> parse_lora_list(const nlohmann::json& list, const std::string& folder, bool inside, const std::string& where);

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
  // Which reference constants step caching takes (request/cache_spec.h:
  // "wan2.1-t2v-1.3b", ...); "" lets the family decide by the model's shape.
  std::string cache_constants;
  // The clip length the model was trained on, in frames (0: the family's,
  // 81 for Wan, 121 for Wan2.2 TI2V-5B): longer clips run in context windows.
  int64_t trained_frames = 0;
  // Per weight file (when the weights were required): its layout and names.
  std::map<std::string, std::shared_ptr<const WeightIndex>> weight_index;
  // LoRAs merged into the transformers at load, in order (the manifest's
  // "loras", then add_loras'), and their plans: each file once per
  // transformer it patches.
  std::vector<LoraSpec> lora_specs;
  std::vector<std::shared_ptr<const LoraPlan>> loras;
};

// Adds LoRAs to `m` after those it has: each is read (names and shapes
// only) and planned against the transformers it patches; kino::Error naming
// the file and tensor when one does not fit (a LoRA for another model) or an
// expert is asked of a one-transformer model. Needs the weights indexed.
void add_loras(ModelManifest& m, const std::vector<LoraSpec>& specs);

// What each LoRA of `m` does to each transformer it patches: a line ("x
// .safetensors at 0.8 on the transformer: 40 tensors patched, 12 keys
// matched nothing") and the keys that matched nothing.
struct LoraReport {
  std::string summary;
  std::vector<std::string> unmatched;
};
std::vector<LoraReport> lora_report(const ModelManifest& m);

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
// How its tensors are stored, by type, most first: "Q4_K x7, Q6_K x3, F32 x26"
// ("" when its weights were not indexed).
std::string weight_types(const ModelManifest& m, const std::string& component);

// A complete manifest for `m` (absolute paths, every config field found):
// what `kino model --json` prints, and a kino.json that loads as `m`.
nlohmann::json manifest_json(const ModelManifest& m);

}  // namespace kino
