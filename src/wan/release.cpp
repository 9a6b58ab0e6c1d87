#include "wan/release.h"

#include <filesystem>
#include <fstream>
#include <optional>

#include "kino/error.h"
#include "loading/layouts.h"
#include "util/json_fields.h"
#include "util/json_parse.h"

namespace fs = std::filesystem;

namespace kino::wan {

const char* const kNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
    "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，"
    "倒着走";

namespace {

// A release's JSON file: an object, of a config's size.
nlohmann::json read_json(const fs::path& file) {
  constexpr std::uintmax_t kMaxBytes = 16u << 20;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) throw Error(concat("cannot read ", file.string(), " (not a regular file)"));
  if (fs::file_size(file, ec) > kMaxBytes) throw Error(concat(file.string(), ": larger than a config file can be (16 MiB)"));
  std::ifstream in(file);
  if (!in) throw Error(concat("cannot read ", file.string()));
  const nlohmann::json j = parse_json(in, file.string());
  if (!j.is_object()) throw Error(concat(file.string(), ": not a JSON object"));
  return j;
}

// What a release is: its family and task (wan2.2 t2v is the A14B pair), and
// for Wan2.1 I2V whether it is the 480P one.
struct Release {
  std::string family = "wan2.1", task = "t2v";
  bool p480 = false;
};

// The generation defaults of a release, as wan/configs and generate.py set
// them: 81 frames at 16 fps and guide 5 throughout; Wan2.1 T2V 50 steps at
// 832x480, shift 5; T2V-A14B 40 steps, guide 4 (high noise) and 3 (low
// noise), 1280x720, shift 12; TI2V-5B 121 frames at 24 fps, 1280x704, shift
// 5; I2V-14B 40 steps, shift 3 at 832x480 (480P) and 5 at 1280x720 (720P),
// "镜头晃动，" before the negative prompt; FLF2V-14B 50 steps at 1280x720,
// shift 16, "镜头切换，" before I2V's; I2V-A14B 40 steps, guide 3.5 for
// both experts, 1280x720, shift 5. `shift` (a Diffusers scheduler's
// flow_shift) replaces the release's.
nlohmann::json release_defaults(const Release& r, std::optional<double> shift) {
  nlohmann::json d = {{"sampler", "unipc"}, {"steps", 50},   {"cfg", 5.0},   {"shift", 5.0},
                      {"width", 832},       {"height", 480}, {"frames", 81}, {"fps", 16}, {"negative_prompt", kNegativePrompt}};
  const std::string i2v_negative = std::string("镜头晃动，") + kNegativePrompt;
  if (r.family == "wan2.2" && r.task == "t2v")
    d.update({{"steps", 40}, {"cfg", 4.0}, {"cfg_low_noise", 3.0}, {"width", 1280}, {"height", 720}, {"shift", 12.0}});
  else if (r.task == "ti2v")
    d.update({{"width", 1280}, {"height", 704}, {"frames", 121}, {"fps", 24}});
  else if (r.family == "wan2.2" && r.task == "i2v")
    d.update({{"steps", 40}, {"cfg", 3.5}, {"cfg_low_noise", 3.5}, {"width", 1280}, {"height", 720}});
  else if (r.task == "i2v")
    d.update({{"steps", 40}, {"negative_prompt", i2v_negative}, {"shift", r.p480 ? 3.0 : 5.0}, {"width", r.p480 ? 832 : 1280},
              {"height", r.p480 ? 480 : 720}});
  else if (r.task == "flf2v")
    d.update({{"shift", 16.0}, {"width", 1280}, {"height", 720}, {"negative_prompt", "镜头切换，" + i2v_negative}});
  else if (r.task == "vace")
    d.update({{"shift", 16.0}});
  if (shift) d["shift"] = *shift;
  return d;
}

// Wan2.1 I2V comes as 480P and 720P releases of one architecture: the
// folder's name tells them apart (Wan2.1-I2V-14B-480P[-Diffusers]).
bool is_480p(const fs::path& dir) { return dir.filename().string().find("480P") != std::string::npos; }

// A WanModel config.json's task (model_type; a VaceWanModel's is "vace",
// whatever its model_type says: the VACE releases write "t2v") and the DiT
// config fields it holds.
std::pair<std::string, nlohmann::json> wan_model_config(const fs::path& file) {
  const nlohmann::json cfg = read_json(file);
  const bool vace = field_or<std::string>(cfg, "_class_name", "", file.string()) == "VaceWanModel";
  const std::string type = vace ? "vace" : field_or<std::string>(cfg, "model_type", "t2v", file.string());
  if (type != "t2v" && type != "ti2v" && type != "i2v" && type != "flf2v" && type != "vace")
    throw Error(concat(file.string(), ": model_type '", type, "' is not supported (kino runs t2v, ti2v, i2v, flf2v and vace models)"));
  nlohmann::json dit = nlohmann::json::object();
  for (const char* k : {"dim", "ffn_dim", "freq_dim", "in_dim", "out_dim", "num_heads", "num_layers", "text_len", "eps", "vace_layers",
                        "vace_in_dim"})
    if (cfg.contains(k)) dit[k] = cfg[k];
  return {type, dit};
}

// The one file in `dir` named `prefix*.pth` (the release's own name first).
std::string release_file(const fs::path& dir, const std::string& name, const std::string& prefix, const std::string& what) {
  std::error_code ec;
  if (fs::exists(dir / name, ec)) return name;
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0 && e.path().extension() == ".pth") found.push_back(e.path().filename().string());
  if (found.size() != 1)
    throw Error(concat(dir.string(), ": expected one ", prefix, "*.pth (", what, ") in this Wan folder, found ", found.size()));
  return found[0];
}

// TeaCache and MagCache were tuned on Wan2.1 I2V-14B at 480P and 720P,
// told apart as the scripts do, by the folder's name.
std::string i2v_cache_constants(const Release& r) { return r.p480 ? "wan2.1-i2v-14b-480p" : "wan2.1-i2v-14b-720p"; }

// An official Wan-AI release folder: the DiT's config.json (WanModel) and
// safetensors — for Wan2.2 A14B in high_noise_model/ and low_noise_model/ —
// models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth (Wan2.2_VAE.pth for
// TI2V-5B), google/umt5-xxl/spiece.model, and for Wan2.1 I2V/FLF2V
// models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth.
nlohmann::json official_manifest(const fs::path& dir) {
  std::error_code ec;
  const bool a14b = fs::exists(dir / "high_noise_model" / "config.json", ec);
  // The model's kind first: a folder of another kind is named as such.
  const auto [task, dit] = wan_model_config(a14b ? dir / "high_noise_model" / "config.json" : dir / "config.json");
  const Release release{a14b || task == "ti2v" ? "wan2.2" : "wan2.1", task, is_480p(dir)};
  nlohmann::json m = {{"kino_manifest", 1},
                      {"name", dir.filename().string()},
                      {"family", release.family},
                      {"task", task},
                      {"tokenizer", "google/umt5-xxl/spiece.model"},
                      {"text_encoder", {{"weights", release_file(dir, "models_t5_umt5-xxl-enc-bf16.pth", "models_t5", "the umT5 text encoder")}}},
                      {"vae", {{"weights", task == "ti2v" ? "Wan2.2_VAE.pth" : "Wan2.1_VAE.pth"}}},
                      {"defaults", release_defaults(release, std::nullopt)}};
  if (a14b) {
    // wan/configs/wan_{t2v,i2v}_A14B.py: boundary 0.875 (T2V) / 0.9 (I2V).
    m["transformer"] = {{"weights", component_weights((dir / "high_noise_model").string())}, {"config", dit}};
    m["transformer_low_noise"] = {{"weights", component_weights((dir / "low_noise_model").string())},
                                  {"config", wan_model_config(dir / "low_noise_model" / "config.json").second}};
    m["boundary_ratio"] = task == "i2v" ? 0.9 : 0.875;
  } else {
    m["transformer"] = {{"weights", component_weights(dir.string())}, {"config", dit}};
  }
  if (release.family == "wan2.1" && task == "i2v") m["cache_constants"] = i2v_cache_constants(release);
  if (release.family == "wan2.1" && (task == "i2v" || task == "flf2v"))
    m["image_encoder"] = {{"weights", release_file(dir, "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", "models_clip",
                                                   "the CLIP image encoder")}};
  return m;
}

// The CLIP config fields a Diffusers image_encoder/config.json
// (transformers' CLIPVisionConfig) holds that the shapes do not decide.
// Wan's encoder is ViT-H/14 with exact GELU; a CLIP of another activation
// (quick_gelu: OpenAI's) is not the one Wan was trained with.
nlohmann::json clip_config(const fs::path& dir) {
  const fs::path file = dir / "image_encoder" / "config.json";
  std::error_code ec;
  nlohmann::json clip = nlohmann::json::object();
  if (!fs::exists(file, ec)) return clip;
  const nlohmann::json c = read_json(file);
  const std::string activation = field_or<std::string>(c, "hidden_act", "gelu", file.string());
  if (activation != "gelu")
    throw Error(concat(file.string(), ": field 'hidden_act' is '", activation, "'; Wan's image encoder uses 'gelu'"));
  int64_t heads = 0;
  if (read_field(c, "num_attention_heads", heads, file.string())) clip["num_heads"] = heads;
  double eps = 0;
  if (read_field(c, "layer_norm_eps", eps, file.string())) clip["eps"] = eps;
  return clip;
}

// A Diffusers folder (model_index.json): WanPipeline (text-to-video; Wan2.2
// A14B adds transformer_2, the low-noise expert, and boundary_ratio; TI2V-5B
// the Wan2.2 VAE) or WanImageToVideoPipeline (Wan2.1 I2V and FLF2V with a
// CLIPVisionModel in image_encoder/, Wan2.2 I2V-A14B with two experts and
// no image encoder).
nlohmann::json diffusers_manifest(const fs::path& dir) {
  const fs::path index_file = dir / "model_index.json";
  const nlohmann::json index = read_json(index_file);
  const std::string cls = field_or<std::string>(index, "_class_name", "", index_file.string());
  if (cls != "WanPipeline" && cls != "WanImageToVideoPipeline" && cls != "WanVACEPipeline")
    throw Error(concat(index_file.string(), ": '", cls,
                       "' is not supported (expected WanPipeline, WanImageToVideoPipeline or WanVACEPipeline)"));
  auto dit_config = [&](const char* folder) {
    const nlohmann::json t = read_json(dir / folder / "config.json");
    nlohmann::json dit = nlohmann::json::object();
    if (t.contains("num_attention_heads")) dit["num_heads"] = t["num_attention_heads"];
    if (t.contains("eps")) dit["eps"] = t["eps"];
    if (t.contains("vace_layers")) dit["vace_layers"] = t["vace_layers"];  // WanVACETransformer3DModel
    return dit;
  };
  // A component the index names and the folder has (Diffusers writes
  // [null, null] for an absent one).
  std::error_code ec;
  auto has = [&](const char* component) {
    return index.contains(component) && index[component].is_array() && !index[component].empty() && !index[component][0].is_null() &&
           fs::exists(dir / component, ec);
  };
  const nlohmann::json v = read_json(dir / "vae" / "config.json");
  nlohmann::json vae = nlohmann::json::object();
  for (const char* k : {"latents_mean", "latents_std"})
    if (v.contains(k)) vae[k] = v[k];
  const bool a14b = has("transformer_2");
  Release release{"wan2.1", "t2v", is_480p(dir)};
  if (cls == "WanVACEPipeline") {
    release.task = "vace";
  } else if (cls == "WanImageToVideoPipeline") {
    // FLF2V's transformer has the two images' position table (pos_embed_seq_len).
    const nlohmann::json t = read_json(dir / "transformer" / "config.json");
    release.task = t.contains("pos_embed_seq_len") && !t["pos_embed_seq_len"].is_null() ? "flf2v" : "i2v";
    if (a14b) release.family = "wan2.2";
    else if (!has("image_encoder")) throw Error(concat(index_file.string(), ": a Wan2.1 image-to-video folder without image_encoder/"));
  } else if (field_or(v, "is_residual", false, (dir / "vae" / "config.json").string()) ||
             field_or(index, "expand_timesteps", false, index_file.string())) {
    // Wan2.2-TI2V-5B-Diffusers: the Wan2.2 VAE (is_residual), frame 0's own
    // timestep (expand_timesteps).
    release = {"wan2.2", "ti2v", false};
  } else if (a14b) {
    release.family = "wan2.2";
  }
  std::optional<double> shift;
  if (fs::exists(dir / "scheduler" / "scheduler_config.json", ec)) {
    const nlohmann::json scheduler = read_json(dir / "scheduler" / "scheduler_config.json");
    if (scheduler.contains("flow_shift") && scheduler["flow_shift"].is_number()) shift = scheduler["flow_shift"].get<double>();
  }
  nlohmann::json m = {{"kino_manifest", 1},
                      {"name", dir.filename().string()},
                      {"family", release.family},
                      {"task", release.task},
                      {"tokenizer", "tokenizer/spiece.model"},
                      {"text_encoder", {{"weights", "text_encoder"}}},
                      {"transformer", {{"weights", "transformer"}, {"config", dit_config("transformer")}}},
                      {"vae", {{"weights", "vae"}, {"config", vae}}},
                      {"defaults", release_defaults(release, shift)}};
  if (a14b) {
    if (!index.contains("boundary_ratio") || !index["boundary_ratio"].is_number())
      throw Error(concat(index_file.string(), ": transformer_2 without a numeric boundary_ratio"));
    m["transformer_low_noise"] = {{"weights", "transformer_2"}, {"config", dit_config("transformer_2")}};
    m["boundary_ratio"] = index["boundary_ratio"];
  }
  if (release.family == "wan2.1" && release.task == "i2v") m["cache_constants"] = i2v_cache_constants(release);
  if (release.family == "wan2.1" && (release.task == "i2v" || release.task == "flf2v")) m["image_encoder"] = {{"weights", "image_encoder"}, {"config", clip_config(dir)}};
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
    auto wan_model = [&] {
      const std::string cls = field_or<std::string>(read_json(dir / "config.json"), "_class_name", "", (dir / "config.json").string());
      return cls == "WanModel" || cls == "VaceWanModel";
    };
    if (!a14b && !(fs::exists(dir / "config.json", ec) && wan_model())) return std::nullopt;
    return ReleaseFolder{official_manifest(dir), (dir / (a14b ? "high_noise_model" : "config.json")).string()};
  };
  return {{"Diffusers WanPipeline", diffusers}, {"Wan-AI release", official}};
}

}  // namespace kino::wan
