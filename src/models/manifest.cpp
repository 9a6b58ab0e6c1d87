#include "kino/manifest.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>

#include "kino/error.h"

namespace fs = std::filesystem;

namespace kino {

namespace {

template <typename T>
T field(const nlohmann::json& j, const std::string& where, const char* key, const T& fallback) {
  if (!j.contains(key)) return fallback;
  const nlohmann::json& v = j.at(key);
  // Integers must be JSON integers (a float such as 1e30 would not fit).
  const bool ok = std::is_same_v<T, std::string> ? v.is_string()
                  : std::is_integral_v<T>         ? v.is_number_integer()
                                                  : v.is_number();
  if (!ok) throw Error(concat(where, ": field '", key, "' has the wrong type"));
  return v.get<T>();
}

// A default the pipeline can run: inside [lo, hi].
template <typename T>
void check_range(const std::string& where, const char* key, T value, T lo, T hi) {
  if (!(value >= lo && value <= hi)) throw Error(concat(where, ": field '", key, "' = ", value, " is outside [", lo, ", ", hi, "]"));
}

}  // namespace

ModelManifest load_manifest(const std::string& path, bool weights_required) {
  std::error_code ec;
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
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat(path, ": not valid JSON (", e.what(), ")"));
  }
  const std::string where = path;
  if (!j.is_object()) throw Error(concat(where, ": the manifest must be a JSON object"));
  const int version = field<int>(j, where, "kino_manifest", 0);
  if (version != 1) throw Error(concat(where, ": field 'kino_manifest' must be 1 (got ", version, ")"));

  const fs::path base = fs::absolute(file).parent_path();
  auto resolve = [&](const std::string& rel, const char* key, bool required = true) {
    if (rel.empty()) throw Error(concat(where, ": field '", key, "' is missing"));
    fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : base / rel;
    p = p.lexically_normal();
    if (required && !fs::exists(p, ec)) throw Error(concat(where, ": ", key, " file not found: ", p.string()));
    return p.string();
  };
  auto component = [&](const char* key, std::string& weights, nlohmann::json& config) {
    if (!j.contains(key) || !j[key].is_object()) throw Error(concat(where, ": field '", key, "' is missing"));
    const auto& c = j[key];
    weights = resolve(field<std::string>(c, where, "weights", ""), key, weights_required);
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
  check_range<int64_t>(dw, "steps", g.steps, 1, 1000);
  check_range(dw, "cfg", g.cfg, 0.0, 100.0);
  check_range(dw, "shift", g.shift, 0.01, 100.0);
  check_range<int64_t>(dw, "width", g.width, 16, 8192);
  check_range<int64_t>(dw, "height", g.height, 16, 8192);
  check_range<int64_t>(dw, "frames", g.frames, 1, 4097);
  check_range(dw, "fps", g.fps, 0.1, 240.0);
  return m;
}

}  // namespace kino
