#include "kino/manifest.h"

#include <filesystem>
#include <fstream>

#include "kino/error.h"

namespace fs = std::filesystem;

namespace kino {

namespace {

template <typename T>
T field(const nlohmann::json& j, const std::string& where, const char* key, const T& fallback) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(concat(where, ": field '", key, "' has the wrong type"));
  }
}

}  // namespace

ModelManifest load_manifest(const std::string& path) {
  std::error_code ec;
  fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "kino.json" : fs::path(path);
  if (!fs::exists(file, ec)) throw Error(concat("model manifest not found: ", file.string()));
  std::ifstream in(file);
  if (!in) throw Error(concat("cannot read model manifest ", file.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat(file.string(), ": not valid JSON (", e.what(), ")"));
  }
  const std::string where = file.string();
  if (!j.is_object()) throw Error(concat(where, ": the manifest must be a JSON object"));
  const int version = field<int>(j, where, "kino_manifest", 0);
  if (version != 1) throw Error(concat(where, ": field 'kino_manifest' must be 1 (got ", version, ")"));

  const fs::path base = fs::absolute(file).parent_path();
  auto resolve = [&](const std::string& rel, const char* key) {
    if (rel.empty()) throw Error(concat(where, ": field '", key, "' is missing"));
    fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : base / rel;
    p = p.lexically_normal();
    if (!fs::exists(p, ec)) throw Error(concat(where, ": ", key, " file not found: ", p.string()));
    return p.string();
  };
  auto component = [&](const char* key, std::string& weights, nlohmann::json& config) {
    if (!j.contains(key) || !j[key].is_object()) throw Error(concat(where, ": field '", key, "' is missing"));
    const auto& c = j[key];
    weights = resolve(field<std::string>(c, where, "weights", ""), key);
    config = c.value("config", nlohmann::json::object());
    if (!config.is_object()) throw Error(concat(where, ": field '", key, ".config' must be an object"));
  };

  ModelManifest m;
  m.path = fs::absolute(file).lexically_normal().string();
  m.name = field<std::string>(j, where, "name", file.parent_path().filename().string());
  m.family = field<std::string>(j, where, "family", "wan2.1");
  if (m.family != "wan2.1") throw Error(concat(where, ": family '", m.family, "' is not supported (expected wan2.1)"));
  m.tokenizer = resolve(field<std::string>(j, where, "tokenizer", ""), "tokenizer");
  component("text_encoder", m.text_encoder, m.text_encoder_config);
  component("transformer", m.transformer, m.transformer_config);
  component("vae", m.vae, m.vae_config);

  const nlohmann::json d = j.value("defaults", nlohmann::json::object());
  const std::string dw = where + " defaults";
  GenerationDefaults& g = m.defaults;
  g.sampler = field(d, dw, "sampler", g.sampler);
  g.steps = field(d, dw, "steps", g.steps);
  g.cfg = field(d, dw, "cfg", g.cfg);
  g.shift = field(d, dw, "shift", g.shift);
  g.width = field(d, dw, "width", g.width);
  g.height = field(d, dw, "height", g.height);
  g.frames = field(d, dw, "frames", g.frames);
  g.fps = field(d, dw, "fps", g.fps);
  g.negative_prompt = field(d, dw, "negative_prompt", g.negative_prompt);
  return m;
}

}  // namespace kino
