#include "wan/release.h"

#include <filesystem>
#include <fstream>

#include "kino/error.h"
#include "loading/layouts.h"

namespace fs = std::filesystem;

namespace kino::wan {

const char* const kNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
    "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，"
    "倒着走";

namespace {

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
                      {"width", 832},       {"height", 480}, {"frames", 81}, {"fps", 16}, {"negative_prompt", kNegativePrompt}};
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
                      {"family", "wan2.1"},
                      {"task", ti2v ? "ti2v" : "t2v"},
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
  // Wan2.2-TI2V-5B-Diffusers: the Wan2.2 VAE (is_residual), frame 0's own
  // timestep (expand_timesteps).
  const bool ti2v = v.value("is_residual", false) || index.value("expand_timesteps", false);
  double shift = 5.0;
  std::error_code ec;
  if (fs::exists(dir / "scheduler" / "scheduler_config.json", ec))
    shift = read_json(dir / "scheduler" / "scheduler_config.json").value("flow_shift", shift);
  const bool a14b = index.contains("transformer_2") && !index["transformer_2"].is_null() && fs::exists(dir / "transformer_2", ec);
  nlohmann::json m = {{"kino_manifest", 1},
                      {"name", dir.filename().string()},
                      {"family", ti2v ? "wan2.2" : "wan2.1"},
                      {"task", ti2v ? "ti2v" : "t2v"},
                      {"tokenizer", "tokenizer/spiece.model"},
                      {"text_encoder", {{"weights", "text_encoder"}}},
                      {"transformer", {{"weights", "transformer"}, {"config", dit_config("transformer")}}},
                      {"vae", {{"weights", "vae"}, {"config", vae}}},
                      {"defaults", ti2v ? ti2v_defaults(shift) : wan_defaults(a14b, shift)}};
  if (a14b) {
    if (!index.contains("boundary_ratio") || !index["boundary_ratio"].is_number())
      throw Error(concat(index_file.string(), ": transformer_2 without a numeric boundary_ratio"));
    m["family"] = "wan2.2";
    m["transformer_low_noise"] = {{"weights", "transformer_2"}, {"config", dit_config("transformer_2")}};
    m["boundary_ratio"] = index["boundary_ratio"];
  }
  return m;
}

}  // namespace

std::vector<FolderFormat> folder_formats() {
  auto diffusers = [](const std::string& path) -> std::optional<ReleaseFolder> {
    const fs::path dir = fs::absolute(path).lexically_normal();
    std::error_code ec;
    if (!fs::exists(dir / "model_index.json", ec)) return std::nullopt;
    return ReleaseFolder{diffusers_manifest(dir), (dir / "model_index.json").string()};
  };
  auto official = [](const std::string& path) -> std::optional<ReleaseFolder> {
    const fs::path dir = fs::absolute(path).lexically_normal();
    std::error_code ec;
    const bool a14b = fs::exists(dir / "high_noise_model" / "config.json", ec);
    if (!a14b && !(fs::exists(dir / "config.json", ec) && read_json(dir / "config.json").value("_class_name", "") == "WanModel"))
      return std::nullopt;
    return ReleaseFolder{official_manifest(dir), (dir / (a14b ? "high_noise_model" : "config.json")).string()};
  };
  return {{"Diffusers WanPipeline", diffusers}, {"Wan-AI release", official}};
}

}  // namespace kino::wan
