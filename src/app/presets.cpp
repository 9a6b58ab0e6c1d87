#include "kino/presets.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kino/error.h"

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
  "negative": "digital, sharp, modern, clean"}
])";

std::string text_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return "";
  if (!j[key].is_string()) throw Error(concat(where, ": field '", key, "' must be a string"));
  return j[key].get<std::string>();
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
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "name" && it.key() != "description" && it.key() != "prompt_prefix" && it.key() != "prompt_suffix" &&
        it.key() != "negative" && it.key() != "settings")
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
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(concat(f.string(), ": not valid JSON (", e.what(), ")"));
    }
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

bool parse_size(const std::string& text, int64_t& width, int64_t& height) {
  long long w = 0, h = 0;
  char x = 0, rest = 0;
  if (std::sscanf(text.c_str(), "%lld%c%lld%c", &w, &x, &h, &rest) != 3 || (x != 'x' && x != 'X')) return false;
  width = w;
  height = h;
  return true;
}

void apply_overrides(const nlohmann::json& j, GenerationRequest& r, const std::string& where,
                     const std::vector<std::string>& allowed_extra, bool only_unset) {
  if (!j.is_object()) throw Error(concat(where, ": expected a JSON object"));
  auto number = [&](const std::string& key) {
    if (!j[key].is_number()) throw Error(concat(where, ": field '", key, "' must be a number"));
    return j[key].get<double>();
  };
  auto integer = [&](const std::string& key) {
    if (!j[key].is_number_integer()) throw Error(concat(where, ": field '", key, "' must be an integer"));
    return j[key].get<int64_t>();
  };
  auto text = [&](const std::string& key) {
    if (!j[key].is_string()) throw Error(concat(where, ": field '", key, "' must be a string"));
    return j[key].get<std::string>();
  };
  auto set = [&](auto& field, auto value) {
    if (!only_unset || !field) field = value;
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "prompt") {
      r.prompt = text(k);
    } else if (k == "negative") {
      set(r.negative, text(k));
    } else if (k == "seed") {
      const int64_t s = integer(k);
      if (s < 0) throw Error(concat(where, ": field 'seed' must be non-negative"));
      set(r.seed, static_cast<uint64_t>(s));
    } else if (k == "steps") {
      set(r.steps, integer(k));
    } else if (k == "cfg") {
      set(r.cfg, number(k));
    } else if (k == "cfg_low_noise") {
      set(r.cfg_low_noise, number(k));
    } else if (k == "shift") {
      set(r.shift, number(k));
    } else if (k == "fps") {
      set(r.fps, number(k));
    } else if (k == "frames") {
      set(r.frames, integer(k));
    } else if (k == "width") {
      set(r.width, integer(k));
    } else if (k == "height") {
      set(r.height, integer(k));
    } else if (k == "sampler") {
      set(r.sampler, text(k));
    } else if (k == "image") {
      set(r.image, text(k));
    } else if (k == "size") {
      const std::string s = text(k);
      int64_t w = 0, h = 0;
      if (!parse_size(s, w, h)) throw Error(concat(where, ": field 'size' must look like WIDTHxHEIGHT, got '", s, "'"));
      set(r.width, w);
      set(r.height, h);
    } else if (std::find(allowed_extra.begin(), allowed_extra.end(), k) == allowed_extra.end()) {
      throw Error(concat(where, ": unknown field '", k, "'"));
    }
  }
}

}  // namespace kino
