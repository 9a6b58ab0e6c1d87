#include "kino/manifest.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>
#include <vector>

#include "kino/error.h"
#include "kino/layouts.h"
#include "kino/tensor_file.h"

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

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(concat("cannot read ", file.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat(file.string(), ": not valid JSON (", e.what(), ")"));
  }
}

// Wan text-to-video defaults (wan/configs): Wan2.1 50 steps, guide 5,
// 832x480; Wan2.2 A14B 40 steps, guide 4 (high noise) and 3 (low noise),
// 1280x720; both 81 frames at 16 fps and the shared negative prompt.
nlohmann::json wan_defaults(bool a14b, double shift) {
  nlohmann::json d = {{"sampler", "unipc"}, {"steps", 50},   {"cfg", 5.0},  {"shift", shift},
                      {"width", 832},       {"height", 480}, {"frames", 81}, {"fps", 16}, {"negative_prompt", kWanNegativePrompt}};
  if (a14b) d.update({{"steps", 40}, {"cfg", 4.0}, {"cfg_low_noise", 3.0}, {"width", 1280}, {"height", 720}});
  return d;
}

// wan/configs/wan_ti2v_5B.py: 50 steps, guide 5, 121 frames at 24 fps,
// 1280x704 (the pixel count images are fit to).
nlohmann::json ti2v_defaults(double shift) {
  nlohmann::json d = wan_defaults(false, shift);
  d.update({{"width", 1280}, {"height", 704}, {"frames", 121}, {"fps", 24}});
  return d;
}

// The DiT config fields a WanModel config.json holds (t2v, or Wan2.2's
// ti2v).
nlohmann::json wan_model_config(const fs::path& file) {
  const nlohmann::json cfg = read_json(file);
  const std::string type = cfg.value("model_type", "t2v");
  if (type != "t2v" && type != "ti2v")
    throw Error(concat(file.string(), ": model_type '", type, "' is not supported (kino runs t2v and ti2v models)"));
  nlohmann::json dit = nlohmann::json::object();
  for (const char* k : {"dim", "ffn_dim", "freq_dim", "in_dim", "out_dim", "num_heads", "num_layers", "text_len", "eps"})
    if (cfg.contains(k)) dit[k] = cfg[k];
  return dit;
}

// An official Wan-AI release folder: the DiT's config.json (WanModel) and
// safetensors — for Wan2.2 A14B in high_noise_model/ and low_noise_model/ —
// models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth, google/umt5-xxl/spiece.model.
nlohmann::json official_manifest(const fs::path& dir) {
  std::error_code ec;
  const bool a14b = fs::exists(dir / "high_noise_model" / "config.json", ec);
  // The model's kind first: a folder of another kind is named as such.
  const nlohmann::json dit = wan_model_config(a14b ? dir / "high_noise_model" / "config.json" : dir / "config.json");
  const bool ti2v = !a14b && read_json(dir / "config.json").value("model_type", "t2v") == "ti2v";
  // The release's name, else the one models_t5_*.pth there is.
  std::string t5 = "models_t5_umt5-xxl-enc-bf16.pth";
  if (!fs::exists(dir / t5, ec)) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().filename().string().rfind("models_t5", 0) == 0 && e.path().extension() == ".pth")
        found.push_back(e.path().filename().string());
    if (found.size() != 1)
      throw Error(concat(dir.string(), ": expected one models_t5_*.pth (the umT5 text encoder) in this Wan folder, found ", found.size()));
    t5 = found[0];
  }
  nlohmann::json m = {{"kino_manifest", 1},
                      {"name", dir.filename().string()},
                      {"tokenizer", "google/umt5-xxl/spiece.model"},
                      {"text_encoder", {{"weights", t5}}},
                      {"vae", {{"weights", "Wan2.1_VAE.pth"}}}};
  if (a14b) {
    // wan/configs/wan_t2v_A14B.py: boundary 0.875, shift 12.
    m["family"] = "wan2.2";
    m["transformer"] = {{"weights", component_weights((dir / "high_noise_model").string())}, {"config", dit}};
    m["transformer_low_noise"] = {{"weights", component_weights((dir / "low_noise_model").string())},
                                  {"config", wan_model_config(dir / "low_noise_model" / "config.json")}};
    m["boundary_ratio"] = 0.875;
    m["defaults"] = wan_defaults(true, 12.0);
  } else if (ti2v) {
    // wan/configs/wan_ti2v_5B.py: the Wan2.2 VAE, shift 5.
    m["family"] = "wan2.2";
    m["vae"] = {{"weights", "Wan2.2_VAE.pth"}};
    m["transformer"] = {{"weights", component_weights(dir.string())}, {"config", dit}};
    m["defaults"] = ti2v_defaults(5.0);
  } else {
    m["transformer"] = {{"weights", component_weights(dir.string())}, {"config", dit}};
    m["defaults"] = wan_defaults(false, 5.0);
  }
  return m;
}

// A Diffusers WanPipeline folder (model_index.json); Wan2.2 A14B adds
// transformer_2 (the low-noise expert) and boundary_ratio, Wan2.2 TI2V-5B the
// Wan2.2 VAE.
nlohmann::json diffusers_manifest(const fs::path& dir) {
  const fs::path index_file = dir / "model_index.json";
  const nlohmann::json index = read_json(index_file);
  const std::string cls = index.value("_class_name", "");
  if (cls != "WanPipeline") throw Error(concat(index_file.string(), ": '", cls, "' is not supported (expected WanPipeline, text-to-video)"));
  auto dit_config = [&](const char* folder) {
    const nlohmann::json t = read_json(dir / folder / "config.json");
    nlohmann::json dit = nlohmann::json::object();
    if (t.contains("num_attention_heads")) dit["num_heads"] = t["num_attention_heads"];
    if (t.contains("eps")) dit["eps"] = t["eps"];
    return dit;
  };
  const nlohmann::json v = read_json(dir / "vae" / "config.json");
  nlohmann::json vae = nlohmann::json::object();
  for (const char* k : {"latents_mean", "latents_std"})
    if (v.contains(k)) vae[k] = v[k];
  // The Wan2.2 VAE (is_residual; Wan2.2-TI2V-5B-Diffusers) makes it a TI2V model.
  const bool ti2v = v.value("is_residual", false);
  double shift = 5.0;
  std::error_code ec;
  if (fs::exists(dir / "scheduler" / "scheduler_config.json", ec))
    shift = read_json(dir / "scheduler" / "scheduler_config.json").value("flow_shift", shift);
  const bool a14b = index.contains("transformer_2") && !index["transformer_2"].is_null() && fs::exists(dir / "transformer_2", ec);
  nlohmann::json m = {{"kino_manifest", 1},
                      {"name", dir.filename().string()},
                      {"tokenizer", "tokenizer/spiece.model"},
                      {"text_encoder", {{"weights", "text_encoder"}}},
                      {"transformer", {{"weights", "transformer"}, {"config", dit_config("transformer")}}},
                      {"vae", {{"weights", "vae"}, {"config", vae}}},
                      {"defaults", ti2v ? ti2v_defaults(shift) : wan_defaults(a14b, shift)}};
  if (ti2v) m["family"] = "wan2.2";
  if (a14b) {
    if (!index.contains("boundary_ratio") || !index["boundary_ratio"].is_number())
      throw Error(concat(index_file.string(), ": transformer_2 without a numeric boundary_ratio"));
    m["family"] = "wan2.2";
    m["transformer_low_noise"] = {{"weights", "transformer_2"}, {"config", dit_config("transformer_2")}};
    m["boundary_ratio"] = index["boundary_ratio"];
  }
  return m;
}

// Fills every config field the weight shapes decide and the manifest left
// out; a DiT without num_heads gets dim / 128 (every released Wan model).
void complete_config(Component c, const std::string& weights, nlohmann::json& config) {
  const TensorSet set = TensorSet::open(weights);
  const nlohmann::json inferred = infer_config(c, set, official_names(c, set.names(), weights));
  for (auto it = inferred.begin(); it != inferred.end(); ++it)
    if (!config.contains(it.key())) config[it.key()] = it.value();
  if (c == Component::Transformer && !config.contains("num_heads")) {
    const int64_t dim = config["dim"].get<int64_t>();
    if (dim % 128) throw Error(concat(weights, ": dim ", dim, " is not a multiple of 128: give transformer.config.num_heads in a kino.json"));
    config["num_heads"] = dim / 128;
  }
}

}  // namespace

ModelManifest load_manifest(const std::string& path, bool weights_required) {
  std::error_code ec;
  if (fs::is_directory(path, ec) && !fs::exists(fs::path(path) / "kino.json", ec)) {
    const fs::path dir = fs::absolute(path).lexically_normal();
    if (fs::exists(dir / "model_index.json", ec))
      return parse_manifest(diffusers_manifest(dir).dump(), (dir / "model_index.json").string(), weights_required);
    const bool a14b = fs::exists(dir / "high_noise_model" / "config.json", ec);
    if (a14b || (fs::exists(dir / "config.json", ec) && read_json(dir / "config.json").value("_class_name", "") == "WanModel"))
      return parse_manifest(official_manifest(dir).dump(), (dir / (a14b ? "high_noise_model" : "config.json")).string(),
                            weights_required);
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
  nlohmann::json j;  // not const: a low-noise expert inherits the transformer's config
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
  auto component = [&](const char* key, Component kind, std::string& weights, nlohmann::json& config) {
    if (!j.contains(key) || !j[key].is_object()) throw Error(concat(where, ": field '", key, "' is missing"));
    const auto& c = j[key];
    weights = resolve(field<std::string>(c, where, "weights", ""), key, weights_required);
    config = c.value("config", nlohmann::json::object());
    if (!config.is_object()) throw Error(concat(where, ": field '", key, ".config' must be an object"));
    if (weights_required) {
      weights = component_weights(weights);
      complete_config(kind, weights, config);
    }
  };

  ModelManifest m;
  m.path = fs::absolute(file).lexically_normal().string();
  m.name = field<std::string>(j, where, "name", file.parent_path().filename().string());
  m.family = field<std::string>(j, where, "family", "wan2.1");
  if (m.family != "wan2.1" && m.family != "wan2.2")
    throw Error(concat(where, ": family '", m.family, "' is not supported (expected wan2.1 or wan2.2)"));
  const std::string tokenizer = field<std::string>(j, where, "tokenizer", "");
  if (!tokenizer.empty()) m.tokenizer = resolve(tokenizer, "tokenizer");
  component("text_encoder", Component::TextEncoder, m.text_encoder, m.text_encoder_config);
  component("transformer", Component::Transformer, m.transformer, m.transformer_config);
  component("vae", Component::Vae, m.vae, m.vae_config);
  if (j.contains("transformer_low_noise")) {
    // The experts share one architecture: fields given for "transformer" hold for both.
    nlohmann::json& own = j["transformer_low_noise"];
    if (own.is_object()) {
      nlohmann::json merged = j["transformer"].value("config", nlohmann::json::object());
      merged.update(own.value("config", nlohmann::json::object()));
      own["config"] = merged;
    }
    component("transformer_low_noise", Component::Transformer, m.transformer_low_noise, m.transformer_low_noise_config);
    m.boundary_ratio = field<double>(j, where, "boundary_ratio", 0.0);
    check_range(where, "boundary_ratio", m.boundary_ratio, 1e-3, 1.0);
  } else if (j.contains("boundary_ratio")) {
    throw Error(concat(where, ": field 'boundary_ratio' needs a 'transformer_low_noise'"));
  }
  // Without a tokenizer file, a safetensors text encoder carries its own
  // (ComfyUI's `spiece_model`).
  if (tokenizer.empty())
    m.tokenizer = fs::path(m.text_encoder).extension() == ".safetensors" ? m.text_encoder : resolve(tokenizer, "tokenizer");

  const nlohmann::json d = j.value("defaults", nlohmann::json::object());
  const std::string dw = where + " defaults";
  GenerationDefaults& g = m.defaults;
  g.sampler = field(d, dw, "sampler", g.sampler);
  g.steps = field(d, dw, "steps", g.steps);
  g.cfg = field(d, dw, "cfg", g.cfg);
  if (d.contains("cfg_low_noise")) g.cfg_low_noise = field(d, dw, "cfg_low_noise", g.cfg);
  g.shift = field(d, dw, "shift", g.shift);
  g.width = field(d, dw, "width", g.width);
  g.height = field(d, dw, "height", g.height);
  g.frames = field(d, dw, "frames", g.frames);
  g.fps = field(d, dw, "fps", g.fps);
  g.negative_prompt = field(d, dw, "negative_prompt", g.negative_prompt);
  check_range<int64_t>(dw, "steps", g.steps, 1, 1000);
  check_range(dw, "cfg", g.cfg, 0.0, 100.0);
  if (g.cfg_low_noise) check_range(dw, "cfg_low_noise", *g.cfg_low_noise, 0.0, 100.0);
  check_range(dw, "shift", g.shift, 0.01, 100.0);
  check_range<int64_t>(dw, "width", g.width, 16, 8192);
  check_range<int64_t>(dw, "height", g.height, 16, 8192);
  check_range<int64_t>(dw, "frames", g.frames, 1, 4097);
  check_range(dw, "fps", g.fps, 0.1, 240.0);
  return m;
}

nlohmann::json manifest_json(const ModelManifest& m) {
  const GenerationDefaults& g = m.defaults;
  nlohmann::json d = {{"sampler", g.sampler}, {"steps", g.steps},   {"cfg", g.cfg},       {"shift", g.shift},
                      {"width", g.width},     {"height", g.height}, {"frames", g.frames}, {"fps", g.fps},
                      {"negative_prompt", g.negative_prompt}};
  if (g.cfg_low_noise) d["cfg_low_noise"] = *g.cfg_low_noise;
  nlohmann::json j = {{"kino_manifest", 1},
                      {"name", m.name},
                      {"family", m.family},
                      {"tokenizer", m.tokenizer},
                      {"text_encoder", {{"weights", m.text_encoder}, {"config", m.text_encoder_config}}},
                      {"transformer", {{"weights", m.transformer}, {"config", m.transformer_config}}},
                      {"vae", {{"weights", m.vae}, {"config", m.vae_config}}},
                      {"defaults", d}};
  if (!m.transformer_low_noise.empty()) {
    j["transformer_low_noise"] = {{"weights", m.transformer_low_noise}, {"config", m.transformer_low_noise_config}};
    j["boundary_ratio"] = m.boundary_ratio;
  }
  return j;
}

}  // namespace kino
