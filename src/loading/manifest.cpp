#include "kino/manifest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "kino/error.h"
#include "loading/layouts.h"
#include "loading/release_folders.h"
#include "request/cache_spec.h"
#include "request/settings.h"
#include "util/json_fields.h"
#include "util/registry.h"
#include "wan/release.h"
#include "util/json_parse.h"

namespace fs = std::filesystem;

namespace kino {

namespace {

Registry<FolderFormat>& folder_formats() {
  static Registry<FolderFormat> all(wan::folder_formats());
  return all;
}

// A model's components: the one transformer, or a low-noise expert beside it.
constexpr const char* kComponents[] = {"text_encoder", "transformer", "vae"};

}  // namespace

void register_folder_format(FolderFormat format) { folder_formats().add(std::move(format)); }

ModelManifest load_manifest(const std::string& path, bool weights_required) {
  std::error_code ec;
  if (fs::is_directory(path, ec) && !fs::exists(fs::path(path) / "kino.json", ec)) {
    for (const FolderFormat& f : folder_formats().all())
      if (const std::optional<ReleaseFolder> folder = f.read(path))
        return parse_manifest(folder->manifest.dump(), folder->file, weights_required);
    throw Error(concat(path, ": no kino.json, Diffusers model_index.json or Wan config.json in this folder"));
  }
  fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "kino.json" : fs::path(path);
  if (!fs::exists(file, ec)) throw Error(concat("model manifest not found: ", file.string()));
  std::ifstream in(file);
  if (!in) throw Error(concat("cannot read model manifest ", file.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(concat("cannot read model manifest ", file.string()));
  return parse_manifest(text, file.string(), weights_required);
}

ModelManifest parse_manifest(const std::string& text, const std::string& path, bool weights_required) {
  std::error_code ec;
  const fs::path file(path);
  nlohmann::json j = parse_json(text, path);  // not const: a low-noise expert inherits the transformer's config
  const std::string where = path;
  if (!j.is_object()) throw Error(concat(where, ": the manifest must be a JSON object"));
  const int version = field_or<int>(j, "kino_manifest", 0, where);
  if (version != 1) throw Error(concat(where, ": field 'kino_manifest' must be 1 (got ", version, ")"));

  ModelManifest m;
  const fs::path base = fs::absolute(file).parent_path();
  auto resolve = [&](const std::string& rel, const char* key, bool required = true) {
    if (rel.empty()) throw Error(concat(where, ": field '", key, "' is missing"));
    fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : base / rel;
    p = p.lexically_normal();
    if (required && !fs::exists(p, ec)) throw Error(concat(where, ": ", key, " file not found: ", p.string()));
    return p.string();
  };
  // `layouts_of`: the component whose key maps read the file (an expert is a transformer).
  auto component = [&](const char* key, const char* layouts_of, std::string& weights, nlohmann::json& config) {
    if (!j.contains(key) || !j[key].is_object()) throw Error(concat(where, ": field '", key, "' is missing"));
    const auto& c = j[key];
    weights = resolve(field_or<std::string>(c, "weights", "", where), key, weights_required);
    config = c.value("config", nlohmann::json::object());
    if (!config.is_object()) throw Error(concat(where, ": field '", key, ".config' must be an object"));
    if (weights_required) {
      weights = component_weights(weights);
      m.weight_index[key] = std::make_shared<const WeightIndex>(index_weights(m.family, layouts_of, weights, config));
    }
  };

  m.path = fs::absolute(file).lexically_normal().string();
  m.name = field_or<std::string>(j, "name", file.parent_path().filename().string(), where);
  // A kino.json older than "task" is a Wan2.1 text-to-video model.
  m.family = field_or<std::string>(j, "family", "wan2.1", where);
  m.task = field_or<std::string>(j, "task", "t2v", where);
  const std::string tokenizer = field_or<std::string>(j, "tokenizer", "", where);
  if (!tokenizer.empty()) m.tokenizer = resolve(tokenizer, "tokenizer");
  std::string* weights[] = {&m.text_encoder, &m.transformer, &m.vae};
  nlohmann::json* configs[] = {&m.text_encoder_config, &m.transformer_config, &m.vae_config};
  for (size_t i = 0; i < std::size(kComponents); ++i) component(kComponents[i], kComponents[i], *weights[i], *configs[i]);
  if (j.contains("transformer_low_noise")) {
    // The experts share one architecture: fields given for "transformer" hold for both.
    nlohmann::json& own = j["transformer_low_noise"];
    if (own.is_object()) {
      nlohmann::json merged = j["transformer"].value("config", nlohmann::json::object());
      merged.update(own.value("config", nlohmann::json::object()));
      own["config"] = merged;
    }
    component("transformer_low_noise", "transformer", m.transformer_low_noise, m.transformer_low_noise_config);
    m.boundary_ratio = field_or<double>(j, "boundary_ratio", 0.0, where);
    if (!(m.boundary_ratio >= 1e-3 && m.boundary_ratio <= 1.0))
      throw Error(concat(where, ": field 'boundary_ratio' = ", m.boundary_ratio, " is outside [0.001, 1]"));
  } else if (j.contains("boundary_ratio")) {
    throw Error(concat(where, ": field 'boundary_ratio' needs a 'transformer_low_noise'"));
  }
  if (j.contains("image_encoder")) component("image_encoder", "image_encoder", m.image_encoder, m.image_encoder_config);
  // Without a tokenizer file, a safetensors text encoder carries its own
  // (ComfyUI's `spiece_model`).
  if (tokenizer.empty())
    m.tokenizer = fs::path(m.text_encoder).extension() == ".safetensors" ? m.text_encoder : resolve(tokenizer, "tokenizer");
  m.defaults = read_defaults(j.value("defaults", nlohmann::json::object()), where + " defaults");
  m.cache_constants = field_or<std::string>(j, "cache_constants", "", where);
  m.trained_frames = field_or<int64_t>(j, "trained_frames", 0, where);
  if (m.trained_frames < 0 || m.trained_frames > 4097 || (m.trained_frames && (m.trained_frames - 1) % 4))
    throw Error(concat(where, ": field 'trained_frames' = ", m.trained_frames, " is not a frame count 4k+1 up to 4097"));
  if (!m.cache_constants.empty() && !cache_constants(m.cache_constants))
    throw Error(concat(where, ": field 'cache_constants' = '", m.cache_constants, "' is none of ", cache_constant_names()));
  if (!m.defaults.cache.empty()) parse_cache_spec(m.defaults.cache, where + " defaults.cache");
  if (j.contains("loras")) {
    // Relative to the manifest, like its weights.
    const std::vector<LoraSpec> specs = parse_lora_list(j["loras"], base.string(), false, where);
    if (weights_required) add_loras(m, specs);
    else m.lora_specs = specs;
  }
  return m;
}

std::string weight_types(const ModelManifest& m, const std::string& component) {
  auto it = m.weight_index.find(component);
  if (it == m.weight_index.end()) return "";
  std::vector<std::pair<int64_t, std::string>> counts;
  for (const auto& [type, n] : it->second->types) counts.push_back({-n, type});
  std::sort(counts.begin(), counts.end());
  std::string out;
  for (const auto& [n, type] : counts) out += concat(out.empty() ? "" : ", ", type, " x", -n);
  return out;
}

std::string weight_layout(const ModelManifest& m, const std::string& component) {
  auto it = m.weight_index.find(component);
  return it == m.weight_index.end() ? "" : it->second->layout;
}

nlohmann::json manifest_json(const ModelManifest& m) {
  nlohmann::json j = {{"kino_manifest", 1},
                      {"name", m.name},
                      {"family", m.family},
                      {"task", m.task},
                      {"tokenizer", m.tokenizer},
                      {"text_encoder", {{"weights", m.text_encoder}, {"config", m.text_encoder_config}}},
                      {"transformer", {{"weights", m.transformer}, {"config", m.transformer_config}}},
                      {"vae", {{"weights", m.vae}, {"config", m.vae_config}}},
                      {"defaults", defaults_json(m.defaults)}};
  if (!m.transformer_low_noise.empty()) {
    j["transformer_low_noise"] = {{"weights", m.transformer_low_noise}, {"config", m.transformer_low_noise_config}};
    j["boundary_ratio"] = m.boundary_ratio;
  }
  if (!m.cache_constants.empty()) j["cache_constants"] = m.cache_constants;
  if (m.trained_frames) j["trained_frames"] = m.trained_frames;
  if (!m.image_encoder.empty()) j["image_encoder"] = {{"weights", m.image_encoder}, {"config", m.image_encoder_config}};
  for (const auto& l : m.lora_specs) {
    nlohmann::json e = {{"file", l.path}, {"strength", l.strength}};
    if (!l.expert.empty()) e["expert"] = l.expert;
    j["loras"].push_back(e);
  }
  return j;
}

}  // namespace kino
