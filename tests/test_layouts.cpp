// The tiny Wan2.1 weights in the layouts users download (official release,
// Diffusers folders, ComfyUI single files; ../shared/fixtures/wan21-layouts):
// every tensor read back under its official name, configs from the shapes,
// whole folders as models, and the end-to-end case of wan21-tiny with each.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "kino/error.h"
#include "loading/layouts.h"
#include "kino/manifest.h"
#include "wan/generator.h"
#include "wan/release.h"
#include "loading/weights.h"
#include "support.h"

using namespace kino;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string layouts(const std::string& rel = "") { return test::fixture_dir("wan21-layouts") + "/" + rel; }
std::string tiny(const std::string& file) { return test::fixture(file); }

const char* kDitF16 = "comfyui/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors";
const char* kDitFp8 = "comfyui/diffusion_models/wan2.1_t2v_1.3B_fp8_scaled.safetensors";
const char* kT5F16 = "comfyui/text_encoders/umt5_xxl_fp16.safetensors";
const char* kT5Fp8 = "comfyui/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors";
const char* kVaeBf16 = "comfyui/vae/wan_2.1_vae.safetensors";

// The MANIFEST's suggested end-to-end tolerance of one run and tensor.
double suggested_tol(const std::string& run, const std::string& tensor) {
  static const Json m = Json::parse(test::read_file(layouts("MANIFEST.json")));
  return m.at("e2e").at("suggested_rel_tol").at(run).at(tensor).get<double>();
}

// How a stored weight must relate to the float32 original.
enum class Rounding { Exact, F16, BF16, Fp8Scaled };

struct LayoutFile {
  const char* path;  // under wan21-layouts/
  std::string component;
  const char* reference;  // wan21-tiny weights
  Rounding linear, rest;   // Linear weights (fp8 in scaled files) and everything else
};

class LayoutWeights : public ::testing::TestWithParam<LayoutFile> {};

// Every official tensor is there under the layout's name, as the original
// rounded once to the file's dtype (fp8: code * scale_weight, within half an
// fp8 step); nothing is left over.
TEST_P(LayoutWeights, HoldTheFixtureWeightsUnderOfficialNames) {
  KINO_REQUIRE_FIXTURES();
  const LayoutFile& f = GetParam();
  Weights w(index_weights("wan2.1", f.component, layouts(f.path)));
  const auto ref = test::load_tensors(tiny(f.reference));
  size_t fp8 = 0;
  for (const auto& [name, r] : ref) {
    at::Tensor got = w.take(name);
    ASSERT_TRUE(got.defined()) << name;
    ASSERT_EQ(got.sizes(), r.sizes()) << name;
    const bool linear = r.dim() == 2 && name.find("embedding.weight") == std::string::npos && name != "token_embedding.weight";
    switch (linear ? f.linear : f.rest) {
      case Rounding::Exact: EXPECT_TRUE(at::equal(got, r)) << name; break;
      case Rounding::F16: EXPECT_TRUE(at::equal(got, r.to(at::kHalf).to(at::kFloat))) << name; break;
      case Rounding::BF16: EXPECT_TRUE(at::equal(got, r.to(at::kBFloat16).to(at::kFloat))) << name; break;
      case Rounding::Fp8Scaled: {
        // e4m3: 3 mantissa bits, so rounding moves a normal value by at most
        // 2^-4 of itself; subnormal steps are 2^-9 of the scale, which is
        // max|W| / 448 in these files.
        ++fp8;
        const double scale = r.abs().max().item<double>() / 448;
        const at::Tensor bound = r.abs() * std::ldexp(1.0, -4) + scale * std::ldexp(1.0, -10) + 1e-12;
        EXPECT_TRUE((got - r).abs().le(bound).all().item<bool>()) << name;
        EXPECT_GT(test::rel_error(got, r), 0.0) << name << " was not rounded: not read as fp8?";
        break;
      }
    }
  }
  if (f.linear == Rounding::Fp8Scaled) {
    EXPECT_GT(fp8, 10u);
  }
  EXPECT_NO_THROW(w.finish());
}

INSTANTIATE_TEST_SUITE_P(
    Files, LayoutWeights,
    ::testing::Values(
        LayoutFile{"official/diffusion_pytorch_model.safetensors", "transformer", "dit_weights.safetensors", Rounding::Exact, Rounding::Exact},
        LayoutFile{"official/models_t5_umt5-xxl-enc-bf16.pth", "text_encoder", "t5_weights.safetensors", Rounding::BF16, Rounding::BF16},
        LayoutFile{"official/Wan2.1_VAE.pth", "vae", "vae_weights.safetensors", Rounding::Exact, Rounding::Exact},
        LayoutFile{"diffusers/transformer/diffusion_pytorch_model.safetensors.index.json", "transformer", "dit_weights.safetensors", Rounding::Exact, Rounding::Exact},
        LayoutFile{"diffusers/text_encoder/model.safetensors.index.json", "text_encoder", "t5_weights.safetensors", Rounding::Exact, Rounding::Exact},
        LayoutFile{"diffusers/vae/diffusion_pytorch_model.safetensors", "vae", "vae_weights.safetensors", Rounding::Exact, Rounding::Exact},
        LayoutFile{kDitF16, "transformer", "dit_weights.safetensors", Rounding::F16, Rounding::F16},
        LayoutFile{kDitFp8, "transformer", "dit_weights.safetensors", Rounding::Fp8Scaled, Rounding::F16},
        LayoutFile{kT5F16, "text_encoder", "t5_weights.safetensors", Rounding::F16, Rounding::F16},
        LayoutFile{kT5Fp8, "text_encoder", "t5_weights.safetensors", Rounding::Fp8Scaled, Rounding::F16},
        LayoutFile{kVaeBf16, "vae", "vae_weights.safetensors", Rounding::BF16, Rounding::BF16}),
    [](const auto& info) {
      std::string name = info.param.path;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name;
    });

// Names map one by one, whatever the file holds: odd or hostile names stay
// as they are (and are then reported as unexpected), never throw.
TEST(Layouts, NamesMapOneByOne) {
  const std::vector<std::string> dif = {"condition_embedder.time_proj.weight", "blocks.3.attn2.to_out.0.bias", "blocks.0.norm2.weight",
                                        "blocks.1.scale_shift_table", "scale_shift_table", "proj_out.weight"};
  const auto d = official_names("wan2.1", "transformer", dif, "t");
  EXPECT_EQ(d.at("time_projection.1.weight"), dif[0]);
  EXPECT_EQ(d.at("blocks.3.cross_attn.o.bias"), dif[1]);
  EXPECT_EQ(d.at("blocks.0.norm3.weight"), dif[2]);
  EXPECT_EQ(d.at("blocks.1.modulation"), dif[3]);
  EXPECT_EQ(d.at("head.modulation"), dif[4]);
  EXPECT_EQ(d.at("head.head.weight"), dif[5]);
  const auto comfy = official_names("wan2.1", "transformer", {"model.diffusion_model.blocks.0.ffn.0.weight", "scaled_fp8",
                                                             "model.diffusion_model.blocks.0.ffn.0.scale_weight"}, "t");
  EXPECT_EQ(comfy.size(), 1u);
  EXPECT_EQ(comfy.at("blocks.0.ffn.0.weight"), "model.diffusion_model.blocks.0.ffn.0.weight");
  const auto vae = official_names("wan2.1", "vae", {"quant_conv.weight", "decoder.up_blocks.2.resnets.1.conv2.bias",
                                                   "decoder.up_blocks.1.upsamplers.0.time_conv.weight",
                                                   "decoder.up_blocks.99999999999999999999.resnets.0.conv1.weight",
                                                   "encoder.down_blocks.4.conv_shortcut.weight"}, "v");
  EXPECT_EQ(vae.at("conv1.weight"), "quant_conv.weight");
  EXPECT_EQ(vae.at("decoder.upsamples.9.residual.6.bias"), "decoder.up_blocks.2.resnets.1.conv2.bias");
  EXPECT_EQ(vae.at("decoder.upsamples.7.time_conv.weight"), "decoder.up_blocks.1.upsamplers.0.time_conv.weight");
  EXPECT_EQ(vae.at("encoder.downsamples.4.shortcut.weight"), "encoder.down_blocks.4.conv_shortcut.weight");
  EXPECT_EQ(vae.size(), 5u);  // the absurd index is kept under a name nothing asks for
  const auto t5 = official_names("wan2.1", "text_encoder", {"shared.weight", "encoder.embed_tokens.weight",
                                                          "encoder.block.2.layer.1.DenseReluDense.wi_0.weight"}, "t5");
  EXPECT_EQ(t5.size(), 2u);  // the tied copy of the embedding is dropped
  EXPECT_EQ(t5.at("blocks.2.ffn.gate.0.weight"), "encoder.block.2.layer.1.DenseReluDense.wi_0.weight");
  EXPECT_THROW(official_names("wan2.1", "transformer", {"condition_embedder.time_proj.weight", "proj_out.weight", "head.head.weight"}, "both"),
               Error);
}

// The newer ComfyUI spelling of scaled fp8 (`<layer>.weight_scale`,
// `<layer>.input_scale`, a U8 `<layer>.comfy_quant` JSON; no marker), made
// here from the legacy fixture file, reads as the same weights; without any
// scale (plain fp8 files) the weights are the fp8 values themselves.
TEST(Layouts, NewerAndPlainFp8SpellingsReadAsTheSameWeights) {
  KINO_REQUIRE_FIXTURES();
  const std::string legacy = layouts(kDitFp8);
  const TensorFile file = TensorFile::open(legacy);
  const std::string quant = R"({"format": "float8_e4m3fn"})";
  auto rewrite = [&](const std::string& path, bool keep_scales) {
    std::vector<TensorToWrite> out;
    for (const auto& v : file.tensors()) {
      if (v.name == "scaled_fp8") continue;
      std::string name = v.name;
      for (const auto& [from, to] : {std::pair<std::string, std::string>{".scale_weight", ".weight_scale"}, {".scale_input", ".input_scale"}})
        if (name.size() > from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0) {
          if (!keep_scales) name.clear();
          else name = name.substr(0, name.size() - from.size()) + to;
        }
      if (name.empty()) continue;
      out.push_back({name, v.dtype, v.shape, v.data});
      if (keep_scales && v.dtype == DType::F8_E4M3)
        out.push_back({v.name.substr(0, v.name.size() - 6) + "comfy_quant", DType::U8, {static_cast<int64_t>(quant.size())}, quant.data()});
    }
    write_safetensors(path, out);
  };
  test::TempDir dir;
  rewrite(dir / "newer.safetensors", true);
  rewrite(dir / "plain.safetensors", false);
  Weights a(index_weights("wan2.1", "transformer", legacy)),
      b(index_weights("wan2.1", "transformer", dir / "newer.safetensors")),
      c(index_weights("wan2.1", "transformer", dir / "plain.safetensors"));
  size_t scaled = 0;
  for (const auto& name : test::load_tensors(tiny("dit_weights.safetensors"))) {
    const at::Tensor wa = a.take(name.first), wb = b.take(name.first), wc = c.take(name.first);
    EXPECT_TRUE(at::equal(wa, wb)) << name.first;
    const TensorView* scale = file.find(name.first.substr(0, name.first.size() - 6) + "scale_weight");
    if (!scale) {
      EXPECT_TRUE(at::equal(wa, wc)) << name.first;
      continue;
    }
    ++scaled;
    EXPECT_TRUE(at::equal(wa, wc * to_tensor(*scale).reshape({}))) << name.first;
  }
  EXPECT_GT(scaled, 10u);
  EXPECT_NO_THROW(b.finish());
  EXPECT_NO_THROW(c.finish());
}

// Diffusers' names of the Wan2.2 VAE (AutoencoderKLWan with is_residual, as in
// Wan2.2-TI2V-5B-Diffusers/vae). No Diffusers-saved file is among the
// fixtures, so the official fixture file is renamed here by the rules of
// Diffusers' convert_vae_22() (scripts/convert_wan_to_diffusers.py), written
// out literally: each tensor reads back under its official name, equal, and
// the config follows from the shapes as from the official file. A Diffusers
// folder with that VAE is a TI2V model with TI2V-5B's defaults.
TEST(Layouts, DiffusersWan22VaeAndTi2vFolder) {
  KINO_REQUIRE_FIXTURES();
  const std::string official = test::fixture("vae22_weights.safetensors", "wan22-tiny");
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  auto convert_vae_22 = [&](const std::string& key) {
    static const std::vector<std::pair<std::string, std::string>> residual = {
        {".residual.0.gamma", ".norm1.gamma"}, {".residual.2.weight", ".conv1.weight"}, {".residual.2.bias", ".conv1.bias"},
        {".residual.3.gamma", ".norm2.gamma"}, {".residual.6.weight", ".conv2.weight"}, {".residual.6.bias", ".conv2.bias"},
        {".shortcut.weight", ".conv_shortcut.weight"}, {".shortcut.bias", ".conv_shortcut.bias"}};
    auto rename_residual = [&](std::string k) {
      for (const auto& [from, to] : residual)
        if (k.find(from) != std::string::npos) return replace(k, from, to);
      return k;
    };
    for (const std::string part : {"encoder", "decoder"}) {
      for (const auto& [from, to] : {std::pair<std::string, std::string>{".middle.0.", ".mid_block.resnets.0."},
                                     {".middle.2.", ".mid_block.resnets.1."}})
        if (key.rfind(part + from, 0) == 0) return rename_residual(replace(key, from, to));
      if (key.rfind(part + ".middle.1.", 0) == 0) return replace(key, ".middle.1.", ".mid_block.attentions.0.");
      for (const auto& [from, to] : {std::pair<std::string, std::string>{".head.0.", ".norm_out."}, {".head.2.", ".conv_out."},
                                     {".conv1.", ".conv_in."}})
        if (key.rfind(part + from, 0) == 0) return replace(key, from, to);
    }
    if (key.rfind("conv1.", 0) == 0) return "quant_conv." + key.substr(6);
    if (key.rfind("conv2.", 0) == 0) return "post_quant_conv." + key.substr(6);
    for (const auto& [from, blocks, inner, resampler] :
         {std::array<std::string, 4>{"encoder.downsamples.", "encoder.down_blocks.", ".downsamples.", "downsampler"},
          {"decoder.upsamples.", "decoder.up_blocks.", ".upsamples.", "upsampler"}}) {
      if (key.rfind(from, 0) != 0) continue;
      std::string k = replace(key, from, blocks);
      if (k.find("residual") != std::string::npos || k.find("shortcut") != std::string::npos)
        return rename_residual(replace(k, inner, ".resnets."));
      // encoder.down_blocks.X.downsamples.Y.resample... -> encoder.down_blocks.X.downsampler.resample...
      std::vector<std::string> parts;
      for (size_t a = 0, b; a <= k.size(); a = b + 1) {
        b = std::min(k.find('.', a), k.size());
        parts.push_back(k.substr(a, b - a));
      }
      if (parts.size() >= 5 && parts[3] == inner.substr(1, inner.size() - 2)) {
        std::string joined = parts[0] + "." + parts[1] + "." + parts[2] + "." + resampler;
        for (size_t i = 5; i < parts.size(); ++i) joined += "." + parts[i];
        return joined;
      }
      return k;
    }
    return key;
  };
  const TensorFile file = TensorFile::open(official);
  std::vector<TensorToWrite> out;
  std::set<std::string> renamed;
  for (const auto& v : file.tensors()) {
    out.push_back({convert_vae_22(v.name), v.dtype, v.shape, v.data});
    renamed.insert(out.back().name);
  }
  // The renaming did rename: nested levels, resamplers without an index.
  EXPECT_TRUE(renamed.count("encoder.down_blocks.0.resnets.0.norm1.gamma"));
  EXPECT_TRUE(renamed.count("encoder.down_blocks.0.downsampler.resample.1.weight"));
  EXPECT_TRUE(renamed.count("decoder.up_blocks.0.upsampler.resample.1.weight"));
  EXPECT_TRUE(renamed.count("post_quant_conv.weight"));
  test::TempDir dir;
  for (const char* sub : {"vae", "transformer", "text_encoder", "tokenizer", "scheduler"}) fs::create_directories(dir / sub);
  const std::string path = dir / "vae/diffusion_pytorch_model.safetensors";
  write_safetensors(path, out);

  Weights a(index_weights("wan2.1", "vae", official)), b(index_weights("wan2.1", "vae", path));
  for (const auto& v : file.tensors()) EXPECT_TRUE(at::equal(a.take(v.name), b.take(v.name))) << v.name;
  EXPECT_NO_THROW(b.finish());
  const TensorSet so = TensorSet::open(official), sd = TensorSet::open(path);
  const Json co = infer_config("wan2.1", "vae", so, official_names("wan2.1", "vae", so.names(), official));
  EXPECT_EQ(infer_config("wan2.1", "vae", sd, official_names("wan2.1", "vae", sd.names(), path)), co);
  EXPECT_EQ(co.at("is_residual"), true);

  fs::copy_file(test::fixture("dit22_ti2v_weights.safetensors", "wan22-tiny"), dir / "transformer/diffusion_pytorch_model.safetensors");
  fs::copy_file(tiny("t5_weights.safetensors"), dir / "text_encoder/model.safetensors");
  fs::copy_file(test::fixture("tokenizer.model"), dir / "tokenizer/spiece.model");
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "WanPipeline", "expand_timesteps": true})";
  std::ofstream(dir / "transformer/config.json") << R"({"num_attention_heads": 4, "eps": 1e-06})";
  std::ofstream(dir / "vae/config.json") << R"({"is_residual": true, "z_dim": 48})";
  std::ofstream(dir / "scheduler/scheduler_config.json") << R"({"flow_shift": 5.0})";
  const ModelManifest m = load_manifest(dir.path);
  EXPECT_EQ(m.family, "wan2.2");
  EXPECT_EQ(m.vae_config.at("is_residual"), true);
  EXPECT_EQ(m.defaults.width, 1280);
  EXPECT_EQ(m.defaults.height, 704);
  EXPECT_EQ(m.defaults.frames, 121);
  EXPECT_EQ(m.defaults.fps, 24);
  EXPECT_EQ(m.defaults.shift, 5.0);
  EXPECT_TRUE(WanGenerator(m, at::kCPU, at::kFloat).takes_first_frame());
}

// The configs every layout implies, from shapes alone, equal the fixture
// manifest's (DiT num_heads and text_len are not in the shapes).
TEST(Layouts, ConfigsFollowFromTheShapes) {
  KINO_REQUIRE_FIXTURES();
  const Json tiny_manifest = Json::parse(test::read_file(test::fixture_manifest_path()));
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"transformer", {"official/diffusion_pytorch_model.safetensors", "diffusers/transformer", kDitF16, kDitFp8}},
      {"text_encoder", {"official/models_t5_umt5-xxl-enc-bf16.pth", "diffusers/text_encoder", kT5F16, kT5Fp8}},
      {"vae", {"official/Wan2.1_VAE.pth", "diffusers/vae", kVaeBf16}}};
  for (const auto& [component, files] : cases) {
    const std::string& key = component;
    const Json& expected = tiny_manifest[key]["config"];
    for (const auto& file : files) {
      const std::string path = component_weights(layouts(file));
      const TensorSet set = TensorSet::open(path);
      const Json got = infer_config("wan2.1", component, set, official_names("wan2.1", component, set.names(), path));
      EXPECT_FALSE(got.empty());
      for (auto it = got.begin(); it != got.end(); ++it)
        if (expected.contains(it.key())) EXPECT_EQ(it.value(), expected[it.key()]) << file << ": " << it.key();
        else EXPECT_EQ(component, "vae") << file << ": " << it.key() << " not in the fixture manifest";
    }
  }
}

// A release folder given to --model is a model: the official one with its
// config.json, the Diffusers one with its component configs and scheduler.
TEST(Layouts, ReleaseFoldersAreModels) {
  KINO_REQUIRE_FIXTURES();
  const ModelManifest off = load_manifest(layouts("official"));
  EXPECT_EQ(off.tokenizer, layouts("official/google/umt5-xxl/spiece.model"));
  EXPECT_EQ(off.text_encoder, layouts("official/models_t5_umt5-xxl-enc-bf16.pth"));  // the release's name
  EXPECT_EQ(off.transformer_config["text_len"], 32);
  EXPECT_EQ(off.transformer_config["num_heads"], 4);
  EXPECT_EQ(off.text_encoder_config["num_layers"], 3);
  EXPECT_EQ(off.defaults.negative_prompt, wan::kNegativePrompt);

  const ModelManifest dif = load_manifest(layouts("diffusers"));
  EXPECT_EQ(dif.tokenizer, layouts("diffusers/tokenizer/spiece.model"));
  EXPECT_EQ(dif.transformer, layouts("diffusers/transformer/diffusion_pytorch_model.safetensors.index.json"));
  EXPECT_EQ(dif.transformer_config["num_heads"], 4);
  EXPECT_FALSE(dif.transformer_config.contains("text_len"));  // Diffusers' max_sequence_length: 512
  EXPECT_EQ(dif.defaults.shift, 5.0);                          // scheduler_config.json flow_shift
  EXPECT_EQ(dif.vae_config["latents_std"].size(), 16u);

  // A ComfyUI text encoder carries its tokenizer.
  test::TempDir dir;
  std::ofstream(dir / "kino.json") << Json{{"kino_manifest", 1},
                                           {"text_encoder", {{"weights", layouts(kT5F16)}}},
                                           {"transformer", {{"weights", layouts(kDitF16)}, {"config", {{"num_heads", 4}, {"text_len", 32}}}}},
                                           {"vae", {{"weights", layouts(kVaeBf16)}}}}
                                          .dump();
  EXPECT_EQ(load_manifest(dir.path).tokenizer, layouts(kT5F16));

  test::TempDir empty;
  try {
    load_manifest(empty.path);
    ADD_FAILURE() << "an empty folder loaded as a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model_index.json"), std::string::npos) << e.what();
  }
}

// `kino model` shows what kino reads; its --json is a kino.json that loads
// as the same model (here: the Diffusers folder, and a two-expert manifest).
TEST(Layouts, ModelCommandPrintsAManifestThatLoadsAsTheSameModel) {
  KINO_REQUIRE_FIXTURES();
  for (const std::string& path : {layouts("diffusers"), std::string(KINO_TEST_DATA_DIR) + "/wan22-moe-tiny.kino.json"}) {
    const auto r = test::kino_cli("model " + test::shell_quote(path) + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    test::TempDir dir;
    std::ofstream(dir / "kino.json") << r.out;
    const ModelManifest a = load_manifest(path), b = load_manifest(dir.path);
    EXPECT_EQ(manifest_json(a), manifest_json(b)) << path;
    EXPECT_EQ(b.transformer_low_noise, a.transformer_low_noise);
    EXPECT_EQ(b.defaults.cfg_low_noise, a.defaults.cfg_low_noise);
    const auto text = test::kino_cli("model " + test::shell_quote(path));
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("\"num_heads\":4"), std::string::npos) << text.out;  // read from the config
  }
}

// The wan21-tiny end-to-end case (UniPC and DPM++, 4 steps, cfg 5, seed 42)
// with some components read from one layout (the rest: wan21-tiny's
// float32 files), stage by stage from the reference inputs. A stage whose
// files are float32 must match e2e_io at the wan21-tiny tolerances; a stage
// with rounded weights must match the official run with the same files
// (expected_quantized, at 1e-4), or, where that run is not stored, e2e_io
// within the MANIFEST's suggested tolerance (the error of the rounding).
struct Mix {
  const char* run;  // MANIFEST e2e run name and expected_quantized prefix
  const char *text_encoder, *tokenizer, *transformer, *vae;  // "" = wan21-tiny's
  bool t5_rounded, dit_rounded, vae_rounded;
};

class LayoutEndToEnd : public ::testing::TestWithParam<Mix> {};

TEST_P(LayoutEndToEnd, MatchesTheOfficialRunWithTheSameFiles) {
  KINO_REQUIRE_FIXTURES();
  const Mix& mix = GetParam();
  const Json tiny_manifest = Json::parse(test::read_file(test::fixture_manifest_path()));
  auto path = [&](const char* rel, const char* fallback) { return rel[0] ? layouts(rel) : tiny(fallback); };
  Json j = {{"kino_manifest", 1},
            {"text_encoder", {{"weights", path(mix.text_encoder, "t5_weights.safetensors")}}},
            {"transformer", {{"weights", path(mix.transformer, "dit_weights.safetensors")}, {"config", {{"num_heads", 4}, {"text_len", 32}}}}},
            {"vae", {{"weights", path(mix.vae, "vae_weights.safetensors")}}}};
  if (mix.tokenizer[0] || !mix.text_encoder[0]) j["tokenizer"] = path(mix.tokenizer, "tokenizer.model");
  test::TempDir dir;
  WanGenerator p(parse_manifest(j.dump(), dir / "kino.json"), at::kCPU, at::kFloat);

  const std::string e2e_file = "e2e_io.safetensors";
  const auto e2e = test::load_tensors(tiny(e2e_file));
  const auto quant = test::load_tensors(layouts("expected_quantized.safetensors"));
  const std::string run = mix.run;
  // Compares one stage's output with its reference (see above).
  auto check = [&](const at::Tensor& got, const std::string& name, const at::Tensor& e2e_ref, bool rounded, const std::string& kind) {
    double tol = 0;
    at::Tensor ref = e2e_ref;
    if (!rounded) {
      tol = test::tolerance(e2e_file, name.find("latents") != std::string::npos ? "unipc.latents" : name);
    } else if (quant.count(run + "." + name)) {
      ref = quant.at(run + "." + name);
      tol = 1e-4;
    } else {
      tol = suggested_tol(run, kind);
    }
    const double err = test::rel_error(got, ref);
    EXPECT_LE(err, tol) << run << " " << name;
    std::printf("[ parity ] %-24s %-20s rel %.3e (tol %.0e)\n", run.c_str(), name.c_str(), err, tol);
  };

  const TensorFile meta = TensorFile::open(tiny(e2e_file));
  check(p.encode_text(meta.metadata().at("prompt")), "context_cond", e2e.at("context_cond"), mix.t5_rounded, "context_cond");
  check(p.encode_text(tiny_manifest["defaults"]["negative_prompt"].get<std::string>()), "context_uncond", e2e.at("context_uncond"),
        mix.t5_rounded, "context_uncond");
  for (const std::string s : {"unipc", "dpmpp"}) {
    const SamplerKind kind = s == "unipc" ? SamplerKind::UniPC : SamplerKind::DPMpp;
    const at::Tensor latent = p.sample(e2e.at("noise"), e2e.at("context_cond"), e2e.at("context_uncond"), kind, 4, 5.0,
                                       e2e.at("guide_scale").item<double>());
    const at::Tensor final_ref = e2e.at(s + ".latents")[-1];
    if (mix.dit_rounded) {
      check(latent, s + ".final_latent", final_ref, true, "final_latent");
      // The official video of that latent is not stored: decode the reference latent.
      check(p.decode(final_ref), s + ".video", e2e.at(s + ".video"), mix.vae_rounded, "video");
    } else {
      check(latent, s + ".latents", final_ref, false, "final_latent");
      check(p.decode(latent), s + ".video", e2e.at(s + ".video"), mix.vae_rounded, "video");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Runs, LayoutEndToEnd,
    ::testing::Values(
        Mix{"diffusers", "diffusers/text_encoder", "diffusers/tokenizer/spiece.model", "diffusers/transformer", "diffusers/vae", false, false, false},
        Mix{"official_bf16_t5", "official/models_t5_umt5-xxl-enc-bf16.pth", "official/google/umt5-xxl/spiece.model",
            "official/diffusion_pytorch_model.safetensors", "official/Wan2.1_VAE.pth", true, false, false},
        Mix{"comfyui_dit_fp16", "", "", kDitF16, "", false, true, false},
        Mix{"comfyui_dit_fp8_scaled", "", "", kDitFp8, "", false, true, false},
        Mix{"comfyui_t5_fp16", kT5F16, "", "", "", true, false, false},
        Mix{"comfyui_t5_fp8_scaled", kT5Fp8, "", "", "", true, false, false},
        Mix{"comfyui_vae_bf16", "", "", "", kVaeBf16, false, false, true}),
    [](const auto& info) { return std::string(info.param.run); });

}  // namespace
