#include "kino/presets.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kino/error.h"
#include "request/settings.h"
#include "util/json_fields.h"
#include "util/json_parse.h"

namespace fs = std::filesystem;

namespace kino {

namespace {

// The built-in presets (the same format as user files).
const char* kBuiltins = R"([
 {"name": "cinematic", "description": "Film look: shallow depth of field, dramatic light",
  "prompt_suffix": ", cinematic shot, dramatic lighting, shallow depth of field, 35mm film, color graded",
  "negative": "flat lighting, amateur, snapshot"},
 {"name": "film-noir", "description": "Black-and-white 1940s noir: hard shadows, high contrast",
  "prompt_suffix": ", film noir, black and white, high contrast, hard shadows, 1940s",
  "negative": "color, colorful, saturated", "settings": {"cfg": 6.0}},
 {"name": "anime", "description": "Hand-drawn anime style: clean line art, cel shading",
  "prompt_suffix": ", anime style, cel shading, clean line art, vibrant colors",
  "negative": "photorealistic, 3d render, photo"},
 {"name": "papercraft", "description": "Cut-paper stop-motion: layered paper, visible texture",
  "prompt_suffix": ", papercraft, layered cut paper, paper texture, stop motion",
  "negative": "photorealistic, glossy, plastic"},
 {"name": "documentary", "description": "Natural, observational documentary footage",
  "prompt_suffix": ", documentary footage, natural light, handheld camera, realistic",
  "negative": "stylized, cartoon, oversaturated"},
 {"name": "vintage-film", "description": "Old film stock: grain, faded colour, light leaks",
  "prompt_suffix": ", vintage film, 16mm, film grain, faded colors, light leaks",
  "negative": "digital, sharp, modern, clean"},
 {"name": "lightx2v-4step", "description": "Step-distilled sampling (with a lightx2v distill LoRA): 4 steps, no guidance",
  "settings": {"sampler": "distill", "steps": 4, "shift": 5.0, "cfg": 1.0}}
])";

std::string text_field(const nlohmann::json& j, const char* key, const std::string& where) {
  return field_or<std::string>(j, key, "", where);
}

}  // namespace

Preset parse_preset(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(concat(source, ": a preset must be a JSON object"));
  Preset p;
  p.source = source;
  p.name = text_field(j, "name", source);
  if (p.name.empty()) throw Error(concat(source, ": field 'name' is missing"));
  p.description = text_field(j, "description", source);
  p.prompt_prefix = text_field(j, "prompt_prefix", source);
  p.prompt_suffix = text_field(j, "prompt_suffix", source);
  p.negative = text_field(j, "negative", source);
  if (j.contains("settings")) {
    if (!j["settings"].is_object()) throw Error(concat(source, ": field 'settings' must be an object"));
    p.settings = j["settings"];
    GenerationRequest probe;  // validate the keys now
    apply_overrides(p.settings, probe, source + " settings");
  }
  if (j.contains("loras")) {
    if (source == "built-in") throw Error("built-in presets name no files");
    p.loras = parse_lora_list(j["loras"], std::filesystem::path(source).parent_path().string(), true, source);
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "name" && it.key() != "description" && it.key() != "prompt_prefix" && it.key() != "prompt_suffix" &&
        it.key() != "negative" && it.key() != "settings" && it.key() != "loras")
      throw Error(concat(source, ": unknown field '", it.key(), "'"));
  return p;
}

std::map<std::string, Preset> load_presets() {
  std::map<std::string, Preset> out;
  for (const auto& j : nlohmann::json::parse(kBuiltins)) {
    Preset p = parse_preset(j, "built-in");
    out[p.name] = p;
  }
  fs::path dir;
  if (const char* env = std::getenv("KINO_PRESETS")) {
    dir = env;
  } else if (const char* home = std::getenv("HOME")) {
    dir = fs::path(home) / ".config" / "kino" / "presets";
  }
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    const nlohmann::json j = parse_json(in, f.string());
    Preset p = parse_preset(j, f.string());
    out[p.name] = p;
  }
  return out;
}

const Preset& find_preset(const std::map<std::string, Preset>& presets, const std::string& name) {
  auto it = presets.find(name);
  if (it == presets.end()) {
    std::string names;
    for (const auto& kv : presets) names += (names.empty() ? "" : ", ") + kv.first;
    throw Error(concat("unknown preset '", name, "' (available: ", names, ")"));
  }
  return it->second;
}

void apply_preset(const Preset& preset, GenerationRequest& r) {
  r.prompt = preset.prompt_prefix + r.prompt + preset.prompt_suffix;
  if (!preset.negative.empty()) {
    const std::string user = r.negative.value_or("");
    r.negative = user.empty() ? preset.negative : user + ", " + preset.negative;
  }
  apply_overrides(preset.settings, r, "preset " + preset.name, {}, /*only_unset=*/true);
}

}  // namespace kino
