// Image-to-video against the official code (../shared/fixtures/wan-i2v-tiny):
// the CLIP image encoder, the Wan2.1 I2V and FLF2V DiTs, WanI2V.generate()
// and WanFLF2V.generate() step by step with both samplers, Wan2.2's
// I2V-A14B with its two experts, and the CLI from the fixture's PNG.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kino/manifest.h"
#include "loading/tensor_file.h"
#include "loading/weights.h"
#include "loading/layouts.h"
#include "media/image.h"
#include "wan/clip.h"
#include "wan/generator.h"
#include "wan/i2v_inputs.h"
#include "wan/release.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kSet = "wan-i2v-tiny";

std::string manifest(const std::string& name) { return std::string(KINO_TEST_DATA_DIR) + "/" + name + ".kino.json"; }

// [3, H, W] in [-1, 1], as TF.to_tensor(pil).sub_(0.5).div_(0.5).
at::Tensor tensor_of(const at::Tensor& u8) { return image_to_tensor(test::image_of(u8)).squeeze(1); }

#define EXPECT_PARITY_I2V(out, ref, file, name) EXPECT_PARITY_IN(kSet, "i2v", out, ref, file, name)

struct Io : test::FixtureIo {
  explicit Io(const std::string& file) : FixtureIo(file, kSet) {}
};

}  // namespace

// CLIPModel.visual() on two images of other sizes than its input: the
// bicubic resize, CLIP's normalisation, every stage of the ViT, the
// penultimate block's output; the checkpoint's text tower and unused parts
// are left out by the key map.
TEST(Clip, VisualTowerMatchesTheOfficialEncoder) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "clip_io.safetensors";
  nlohmann::json config = {{"num_heads", 4}};
  const WeightIndex index = index_weights("wan2.1", "image_encoder", test::fixture("clip_weights.safetensors", kSet), config);
  EXPECT_EQ(config["dim"], 32);
  EXPECT_EQ(config["num_layers"], 3);
  EXPECT_EQ(config["image_size"], 56);
  EXPECT_EQ(config["patch_size"], 14);
  EXPECT_EQ(index.names.count("transformer.2.norm1.weight"), 0u) << "the last block never runs";
  Weights w(index);
  const ClipVision clip(ClipVisionConfig::from_json(config, "clip"), w);
  w.finish();  // every mapped tensor taken: nothing of the text tower was asked for
  const Io io(file);
  EXPECT_TRUE(at::equal(tensor_of(io["image_a"]), io["image_a_tensor"]));
  Trace trace;
  const at::Tensor out = clip.forward({io["image_a_tensor"], io["image_b_tensor"]}, &trace);
  for (const char* name : {"resized_01", "normalized", "patch_embedding_out", "embeddings", "pre_norm_out", "block0_norm1_out",
                           "block0_qkv", "block0_attn_core", "block0_attn_out", "block0_norm2_out", "block0_mlp_out", "block0_out",
                           "block1_out"})
    EXPECT_PARITY_I2V(trace.at(name), io[name], file, name);
  EXPECT_PARITY_I2V(out, io["visual_out"], file, "visual_out");
  // One image at a time gives the same rows.
  EXPECT_PARITY_I2V(clip.forward({io["image_b_tensor"]})[0], io["visual_out"][1], file, "visual_out");
}

namespace {

// The fixture CLIP in Hugging Face's CLIPVisionModel names (Diffusers'
// image_encoder/, ComfyUI's clip_vision_h.safetensors). No such file is among
// the fixtures, so the official weights are renamed by the rules of
// transformers' convert_clip_original_pytorch_to_hf.py, written out
// literally: to_qkv split in thirds, the class token [D], the position table
// [1 + positions, D]; the parts the encoder never runs are kept (the last
// layer, post_layernorm, visual_projection) as the real files have them.
void write_hf_clip(const std::string& path) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, t] : test::load_tensors(test::fixture("clip_weights.safetensors", kSet))) {
    if (name.rfind("visual.", 0) != 0) continue;
    const std::string n = name.substr(7);
    std::string i, rest;
    if (split_block(n, "transformer.", i, rest)) {
      const std::string layer = "vision_model.encoder.layers." + i + ".";
      if (rest.rfind("attn.to_qkv.", 0) == 0) {
        const auto thirds = t.chunk(3);
        for (int k = 0; k < 3; ++k) out.emplace_back(layer + "self_attn." + "qkv"[k] + "_proj." + rest.substr(12), thirds[k]);
        continue;
      }
      out.emplace_back(layer + replace_prefix(rest, {{"norm1.", "layer_norm1."}, {"norm2.", "layer_norm2."}, {"attn.proj.", "self_attn.out_proj."},
                                                     {"mlp.0.", "mlp.fc1."}, {"mlp.2.", "mlp.fc2."}}),
                       t);
    } else if (n == "cls_embedding") {
      out.emplace_back("vision_model.embeddings.class_embedding", t.reshape({-1}));
    } else if (n == "pos_embedding") {
      out.emplace_back("vision_model.embeddings.position_embedding.weight", t[0]);
    } else if (n == "head") {
      out.emplace_back("visual_projection.weight", t.t());
    } else {
      out.emplace_back("vision_model." + replace_prefix(n, {{"patch_embedding.", "embeddings.patch_embedding."},
                                                            {"pre_norm.", "pre_layrnorm."}, {"post_norm.", "post_layernorm."}}),
                       t);
    }
  }
  out.emplace_back("vision_model.embeddings.position_ids", at::arange(17, at::kLong).unsqueeze(0));
  test::write_tensors(path, out);
}


}  // namespace

// CLIP in Hugging Face's names loads as the official encoder.
TEST(Clip, HuggingFaceNamesLoadAsTheOfficialEncoder) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_hf_clip(dir / "model.safetensors");
  nlohmann::json hf_config = {{"num_heads", 4}}, official_config = {{"num_heads", 4}};
  const WeightIndex hf = index_weights("wan2.1", "image_encoder", dir / "model.safetensors", hf_config);
  const WeightIndex ref = index_weights("wan2.1", "image_encoder", test::fixture("clip_weights.safetensors", kSet), official_config);
  EXPECT_EQ(hf.layout, "huggingface");
  EXPECT_EQ(hf_config, official_config);
  EXPECT_EQ(hf.floating_elements, ref.floating_elements);
  Weights a(hf), b(ref);
  const ClipVision from_hf(ClipVisionConfig::from_json(hf_config, "clip"), a);
  const ClipVision from_official(ClipVisionConfig::from_json(official_config, "clip"), b);
  EXPECT_NO_THROW(a.finish());
  const Io io("clip_io.safetensors");
  EXPECT_TRUE(at::equal(from_hf.forward({io["image_a_tensor"]}), from_official.forward({io["image_a_tensor"]})));
}

// The I2V and FLF2V DiTs in Diffusers' names read back as the official
// tensors, every one.
TEST(I2vDit, DiffusersNamesReadAsTheOfficialWeights) {
  KINO_REQUIRE_FIXTURES();
  for (const char* file : {"dit_i2v_weights.safetensors", "dit_flf2v_weights.safetensors"}) {
    test::TempDir dir;
    test::write_diffusers_dit(test::fixture(file, kSet), dir / "d.safetensors");
    const WeightIndex index = index_weights("wan2.1", "transformer", dir / "d.safetensors");
    EXPECT_EQ(index.layout, "diffusers");
    Weights w(index);
    const auto official = test::load_tensors(test::fixture(file, kSet));
    for (const auto& [name, t] : official) EXPECT_TRUE(at::equal(w.take(name), t)) << file << ": " << name;
    EXPECT_NO_THROW(w.finish());
    EXPECT_EQ(index.names.size(), official.size());
  }
}

// One forward of the I2V and the FLF2V DiT: the 36 input channels, img_emb
// (FLF2V: with emb_pos), the image keys and values of the cross-attention,
// every intermediate.
TEST(I2vDit, OneForwardMatchesTheOfficialModelWithEveryIntermediate) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "dit_i2v_io.safetensors";
  const Io io(file);
  for (const std::string kind : {"i2v", "flf2v"}) {
    nlohmann::json config = {{"num_heads", 4}, {"text_len", 32}};
    Weights w(index_weights("wan2.1", "transformer", test::fixture("dit_" + kind + "_weights.safetensors", kSet), config));
    EXPECT_EQ(config["in_dim"], 36);
    EXPECT_EQ(config["image_dim"], 32);
    EXPECT_EQ(config.value("image_pos_tokens", 0), kind == "flf2v" ? 34 : 0);
    const WanDiT dit(WanDiTConfig::from_json(config, kind), w);
    w.finish();
    const std::string p = kind + ".";
    const at::Tensor x = at::cat({io[p + "x"], io[p + "y"]});
    EXPECT_TRUE(at::equal(x.unsqueeze(0), io[p + "x_in"]));
    Trace trace;
    const at::Tensor clip = io[p + "clip_fea"];
    const at::Tensor out = dit.forward({x}, {io[p + "t"].item<double>()}, {io[p + "context"]}, io[p + "seq_len"].item<int64_t>(),
                                       &trace, {}, {clip.reshape({-1, clip.size(-1)})})[0];
    for (const char* name : {"patch_embedding_out", "e", "e0", "text_embedded", "img_emb_out", "context_all", "block0_self_attn_out",
                             "block0_cross_q", "block0_cross_k_text", "block0_cross_v_text", "block0_cross_text_core",
                             "block0_cross_k_img", "block0_cross_v_img", "block0_cross_img_core", "block0_cross_attn_out",
                             "block0_ffn_out", "block0_out", "block1_out", "head_out"})
      EXPECT_PARITY_I2V(trace.at(name), io[p + name], file, p + name);
    EXPECT_PARITY_I2V(out, io[p + "out"], file, p + "out");
    // Without the image features the model refuses to run.
    EXPECT_THROW(dit.forward({x}, {1}, {io[p + "context"]}, io[p + "seq_len"].item<int64_t>()), Error);
  }
}

namespace {

// A pipeline's run with one sampler against its io file: every step's
// velocities and latent, the video.
void expect_run(const WanGenerator& g, const Io& io, const std::string& file, const std::string& sampler,
                const at::Tensor& condition, const at::Tensor& clip, Guidance cfg, double shift) {
  const std::string r = sampler + ".";
  const SamplerKind kind = sampler == "unipc" ? SamplerKind::UniPC : SamplerKind::DPMpp;
  const int64_t steps = io[r + "timesteps"].size(0);
  EXPECT_TRUE(at::equal(at::tensor(make_schedule(kind, steps, shift).timesteps, at::kLong), io[r + "timesteps"]));
  SampleInputs inputs;
  inputs.condition = condition;
  inputs.image_features = clip;
  const at::Tensor latent = g.sample(
      io["noise"], io["context_cond"], io["context_uncond"], kind, steps, shift, cfg,
      [&](const WanGenerator::Step& s) {
        EXPECT_PARITY_I2V(s.cond, io[r + "noise_pred_cond"][s.index], file, r + "noise_pred_cond");
        EXPECT_PARITY_I2V(s.uncond, io[r + "noise_pred_uncond"][s.index], file, r + "noise_pred_uncond");
        EXPECT_PARITY_I2V(s.guided, io[r + "noise_pred"][s.index], file, r + "noise_pred");
        EXPECT_PARITY_I2V(s.latent, io[r + "latents"][s.index], file, r + "latents");
        if (io.t.count(r + "expert_is_high_noise")) {
          EXPECT_EQ(!s.low_noise_expert, io[r + "expert_is_high_noise"][s.index].item<int64_t>() != 0) << "step " << s.index;
          EXPECT_EQ(s.guidance, io[r + "guide_scale_per_step"][s.index].item<double>()) << "step " << s.index;
        }
      },
      inputs);
  EXPECT_PARITY_I2V(g.decode(latent), io[r + "video"], file, r + "video");
}

}  // namespace

// WanI2V.generate() (Wan2.1): texts, the size from the image and the area,
// the mask, the VAE's condition, the CLIP features, both samplers.
TEST(I2vPipeline, Wan21ImageToVideoMatchesEveryStep) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "i2v_e2e_io.safetensors";
  const ModelManifest m = load_manifest(manifest("wan21-i2v-tiny"));
  EXPECT_EQ(m.family + " " + m.task, "wan2.1 i2v");
  const WanGenerator g(m, at::kCPU, at::kFloat);
  ASSERT_TRUE(g.takes_image_condition());
  const Io io(file);
  EXPECT_PARITY_I2V(g.encode_text(io.meta.at("prompt")), io["context_cond"], file, "context_cond");
  EXPECT_PARITY_I2V(g.encode_text(m.defaults.negative_prompt), io["context_uncond"], file, "context_uncond");
  const at::Tensor img = tensor_of(io["image"]);
  EXPECT_TRUE(at::equal(img, io["image_tensor"]));
  const at::Tensor geo = io["geometry"];  // image_h, image_w, lat_h, lat_w, h, w
  const auto [w, h] = i2v_output_size(img.size(2), img.size(1), io["max_area"].item<int64_t>(), 8, 2);
  EXPECT_EQ(h, geo[4].item<int64_t>());
  EXPECT_EQ(w, geo[5].item<int64_t>());
  const int64_t frames = io["unipc.video"].size(1);
  EXPECT_TRUE(at::equal(i2v_mask(frames, h / 8, w / 8, false), io["mask"]));
  EXPECT_PARITY_I2V(i2v_vae_input(img, {}, frames, h, w).select(1, 0), io["vae_input_frame0"], file, "vae_input_frame0");
  const at::Tensor y = g.image_condition(img, {}, frames, h, w);
  EXPECT_PARITY_I2V(y, io["y"], file, "y");
  Trace trace;
  const at::Tensor clip = g.encode_clip({img}, &trace);
  EXPECT_PARITY_I2V(trace.at("resized_01"), io["clip_resized_01"], file, "clip_resized_01");
  EXPECT_PARITY_I2V(trace.at("normalized"), io["clip_normalized"], file, "clip_normalized");
  EXPECT_PARITY_I2V(clip, io["clip_fea"], file, "clip_fea");
  for (const char* sampler : {"unipc", "dpmpp"})
    expect_run(g, io, file, sampler, io["y"], io["clip_fea"], io["guide_scale"].item<double>(), 5.0);
}

// WanFLF2V.generate(): the last frame's fit to the first (zero-padded, as
// TF.center_crop does), the mask with the last latent frame, CLIP on both.
TEST(I2vPipeline, Wan21FirstLastFrameMatchesEveryStep) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "flf2v_e2e_io.safetensors";
  const ModelManifest m = load_manifest(manifest("wan21-flf2v-tiny"));
  const WanGenerator g(m, at::kCPU, at::kFloat);
  const Io io(file);
  EXPECT_PARITY_I2V(g.encode_text(io.meta.at("prompt")), io["context_cond"], file, "context_cond");
  EXPECT_PARITY_I2V(g.encode_text(m.defaults.negative_prompt), io["context_uncond"], file, "context_uncond");
  const at::Tensor first = tensor_of(io["first"]), last = flf2v_fit_last(tensor_of(io["last"]), first.size(2), first.size(1));
  EXPECT_TRUE(at::equal(last, io["last_cropped"]));
  const auto [w, h] = i2v_output_size(first.size(2), first.size(1), io["max_area"].item<int64_t>(), 8, 2);
  EXPECT_EQ(h, io["geometry"][4].item<int64_t>());
  EXPECT_EQ(w, io["geometry"][5].item<int64_t>());
  EXPECT_TRUE(at::equal(i2v_mask(81, h / 8, w / 8, true), io["mask"]));
  const at::Tensor video_in = i2v_vae_input(first, last, 81, h, w);
  EXPECT_PARITY_I2V(video_in.select(1, 0), io["vae_input_frame0"], file, "vae_input_frame0");
  EXPECT_PARITY_I2V(video_in.select(1, 80), io["vae_input_frame_last"], file, "vae_input_frame_last");
  EXPECT_PARITY_I2V(g.image_condition(first, last, 81, h, w), io["y"], file, "y");
  EXPECT_PARITY_I2V(g.encode_clip({first, last}), io["clip_fea"], file, "clip_fea");
  for (const char* sampler : {"unipc", "dpmpp"})
    expect_run(g, io, file, sampler, io["y"], io["clip_fea"], io["guide_scale"].item<double>(), 16.0);
}

// Wan2.2 I2V-A14B: no CLIP; the high-noise expert while t >= 900 with the
// second guide scale, the low-noise one after with the first.
TEST(I2vPipeline, Wan22ImageToVideoSwitchesExpertsAsTheOfficialCode) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "i2v22_e2e_io.safetensors";
  const ModelManifest m = load_manifest(manifest("wan22-i2v-tiny"));
  const WanGenerator g(m, at::kCPU, at::kFloat);
  ASSERT_TRUE(g.has_low_noise_expert());
  const Io io(file);
  EXPECT_PARITY_I2V(g.encode_text(io.meta.at("prompt")), io["context_cond"], file, "context_cond");
  EXPECT_PARITY_I2V(g.encode_text(m.defaults.negative_prompt), io["context_uncond"], file, "context_uncond");
  const at::Tensor img = tensor_of(io["image"]);
  const auto [w, h] = i2v_output_size(img.size(2), img.size(1), io["max_area"].item<int64_t>(), 8, 2);
  const int64_t frames = io["unipc.video"].size(1);
  EXPECT_PARITY_I2V(g.image_condition(img, {}, frames, h, w), io["y"], file, "y");
  const at::Tensor pair = io["guide_scales_low_high"];
  for (const char* sampler : {"unipc", "dpmpp"})
    expect_run(g, io, file, sampler, io["y"], {}, Guidance(pair[1].item<double>(), pair[0].item<double>()), 5.0);
  // The real 40-step schedule switches where the official code does.
  const Schedule real = make_schedule(SamplerKind::UniPC, 40, 5.0);
  if (at::equal(at::tensor(real.timesteps, at::kLong), io["real_schedule.timesteps"]))
    for (size_t i = 0; i < real.timesteps.size(); ++i)
      EXPECT_EQ(real.timesteps[i] >= io["boundary_timestep"].item<double>(),
                io["real_schedule.expert_is_high_noise"][static_cast<int64_t>(i)].item<int64_t>() != 0);
  else
    ADD_FAILURE() << "the real schedule is not UniPC's at shift 5";
}

// `kino generate --image` with the fixture model from the fixture's PNG:
// the official frames within 1/255; a model without images refuses it, an
// I2V model refuses to run without one, FLF2V needs --last-image.
TEST(I2vPipeline, CliReproducesTheOfficialFramesFromThePng) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  const Io io("i2v_e2e_io.safetensors");
  auto r = test::kino_cli("generate " + test::shell_quote(io.meta.at("prompt")) + " --model " +
                          test::shell_quote(manifest("wan21-i2v-tiny")) + " --image " +
                          test::shell_quote(test::fixture("i2v_image.png", kSet)) + " --seed 42 --size 64x48 --threads 1 -o " +
                          test::shell_quote(dir / "f_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const at::Tensor ref = video_to_uint8(io["unipc.video"]).to(at::kInt);  // [F, H, W, 3]
  for (int64_t f = 0; f < ref.size(0); ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "f_%04d.png", static_cast<int>(f));
    const Image got = read_image(dir / name);
    ASSERT_EQ(got.width, 64);
    ASSERT_EQ(got.height, 48);
    const at::Tensor g = at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {48, 64, 3}, at::kByte).to(at::kInt);
    EXPECT_LE((g - ref[f]).abs().max().item<int>(), 1) << "frame " << f;
  }
  auto none = test::kino_cli("generate x --model " + test::shell_quote(manifest("wan21-i2v-tiny")) + " -o " +
                             test::shell_quote(dir / "n.mp4"));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("needs --image"), std::string::npos) << none.err;
  auto flf = test::kino_cli("generate x --model " + test::shell_quote(manifest("wan21-flf2v-tiny")) + " --image " +
                            test::shell_quote(test::fixture("flf2v_first.png", kSet)) + " -o " + test::shell_quote(dir / "n.mp4"));
  EXPECT_EQ(flf.exit_code, 1);
  EXPECT_NE(flf.err.find("needs --last-image"), std::string::npos) << flf.err;
  EXPECT_EQ(test::count_files(dir.path), static_cast<size_t>(ref.size(0)));

  // --from never opens the image a video names: it is given again.
  test::TempDir videos;
  const std::string image = test::shell_quote(test::fixture("i2v_image.png", kSet));
  ASSERT_EQ(test::kino_cli("generate x --model " + test::shell_quote(manifest("wan21-i2v-tiny")) + " --image " + image +
                           " --size 64x48 -q -o " + test::shell_quote(videos / "a.mp4"))
                .exit_code,
            0);
  const auto bare = test::kino_cli("generate --from " + test::shell_quote(videos / "a.mp4") + " --model " +
                                   test::shell_quote(manifest("wan21-i2v-tiny")) + " -o " + test::shell_quote(videos / "b.mp4"));
  EXPECT_EQ(bare.exit_code, 1);
  EXPECT_NE(bare.err.find("give it with --image to reproduce"), std::string::npos) << bare.err;
  const auto again = test::kino_cli("generate --from " + test::shell_quote(videos / "a.mp4") + " --image " + image + " --model " +
                                    test::shell_quote(manifest("wan21-i2v-tiny")) + " -o " + test::shell_quote(videos / "c.mp4"));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("to reproduce"), std::string::npos) << again.err;
}

namespace {

namespace fs = std::filesystem;

// An official Wan2.1 image release folder made of the fixture's files under
// the release's names: the float32 umT5 and the VAE as .pth (wan21-layouts),
// and the CLIP weights under the checkpoint's name (no .pth of them is among
// the fixtures; the file is read by its content, and the .pth reader is
// tested on the umT5 and VAE files).
fs::path official_release(const fs::path& dir, const std::string& model_type, const std::string& dit) {
  test::write_json(dir / "config.json", {{"_class_name", "WanModel"}, {"model_type", model_type}, {"num_heads", 4}, {"text_len", 32}});
  test::link(test::fixture(dit, kSet), dir / "diffusion_pytorch_model.safetensors");
  test::link(test::layouts_path("official/models_t5_umt5-xxl-enc-f32.pth"), dir / "models_t5_umt5-xxl-enc-bf16.pth");
  test::link(test::layouts_path("official/Wan2.1_VAE.pth"), dir / "Wan2.1_VAE.pth");
  test::link(test::layouts_path("official/google"), dir / "google");
  test::link(test::fixture("clip_weights.safetensors", kSet), dir / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth");
  return dir;
}

// A Diffusers WanImageToVideoPipeline folder: the DiT and CLIP renamed as
// Diffusers and transformers name them, the wan21-layouts Diffusers umT5,
// tokenizer and VAE.
fs::path diffusers_release(const fs::path& dir, const std::string& dit, bool flf2v) {
  test::write_json(dir / "model_index.json", {{"_class_name", "WanImageToVideoPipeline"},
                                        {"image_encoder", {"transformers", "CLIPVisionModel"}},
                                        {"transformer", {"diffusers", "WanTransformer3DModel"}},
                                        {"transformer_2", {nullptr, nullptr}}});
  test::write_json(dir / "transformer" / "config.json",
             {{"num_attention_heads", 4}, {"image_dim", 32}, {"pos_embed_seq_len", flf2v ? nlohmann::json(34) : nlohmann::json()}});
  test::write_diffusers_dit(test::fixture(dit, kSet), (dir / "transformer" / "diffusion_pytorch_model.safetensors").string());
  test::write_json(dir / "image_encoder" / "config.json", {{"hidden_act", "gelu"}, {"num_attention_heads", 4}, {"layer_norm_eps", 1e-5}});
  write_hf_clip((dir / "image_encoder" / "model.safetensors").string());
  for (const char* part : {"text_encoder", "tokenizer", "vae"}) test::link(test::layouts_path(std::string("diffusers/") + part), dir / part);
  test::write_json(dir / "scheduler" / "scheduler_config.json", {{"flow_shift", 3.0}});
  return dir;
}

}  // namespace

// The image releases users download are models: task, family, image encoder
// and the release's defaults (wan/configs, generate.py). An official folder
// holds no CLIP config (clip.py builds ViT-H/14 with 16 heads, 1280 / 80,
// the rule kino completes it by), so the tiny CLIP's 4 heads cannot come
// from it: its folders are read here without indexing the weights.
TEST(I2vFolders, OfficialAndDiffusersReleasesAreModelsWithTheirDefaults) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  auto load_official = [](const fs::path& folder) { return load_manifest(folder.string(), false); };
  const std::string i2v_negative = std::string("镜头晃动，") + wan::kNegativePrompt;

  const ModelManifest p480 = load_official(official_release(fs::path(dir.path) / "Wan2.1-I2V-14B-480P", "i2v", "dit_i2v_weights.safetensors"));
  EXPECT_EQ(p480.family, "wan2.1");
  EXPECT_EQ(p480.task, "i2v");
  EXPECT_NE(p480.image_encoder.find("models_clip_open-clip"), std::string::npos);
  EXPECT_EQ(p480.defaults.steps, 40);
  EXPECT_EQ(p480.defaults.shift, 3.0);
  EXPECT_EQ(p480.defaults.width * p480.defaults.height, 832 * 480);
  EXPECT_EQ(p480.defaults.negative_prompt, i2v_negative);

  const ModelManifest p720 = load_official(official_release(fs::path(dir.path) / "Wan2.1-I2V-14B-720P", "i2v", "dit_i2v_weights.safetensors"));
  EXPECT_EQ(p720.defaults.shift, 5.0);
  EXPECT_EQ(p720.defaults.width * p720.defaults.height, 1280 * 720);

  const ModelManifest flf = load_official(official_release(fs::path(dir.path) / "Wan2.1-FLF2V-14B-720P", "flf2v", "dit_flf2v_weights.safetensors"));
  EXPECT_EQ(flf.task, "flf2v");
  EXPECT_EQ(flf.defaults.steps, 50);
  EXPECT_EQ(flf.defaults.shift, 16.0);
  EXPECT_EQ(flf.defaults.cfg, 5.0);
  EXPECT_EQ(flf.defaults.negative_prompt, "镜头切换，" + i2v_negative);

  // Wan2.2 I2V-A14B: two experts, boundary 0.9, guide 3.5 for both, no CLIP.
  const fs::path a14b = fs::path(dir.path) / "Wan2.2-I2V-A14B";
  for (const char* expert : {"high_noise_model", "low_noise_model"}) {
    test::write_json(a14b / expert / "config.json", {{"_class_name", "WanModel"}, {"model_type", "i2v"}, {"num_heads", 4}, {"text_len", 32}});
    test::link(test::fixture(std::string("i2v22_") + expert + "_weights.safetensors", kSet), a14b / expert / "diffusion_pytorch_model.safetensors");
  }
  for (const char* file : {"models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth", "google"}) test::link(test::layouts_path(std::string("official/") + file), a14b / file);
  const ModelManifest i2v22 = load_manifest(a14b.string());
  EXPECT_EQ(i2v22.family, "wan2.2");
  EXPECT_EQ(i2v22.task, "i2v");
  EXPECT_TRUE(i2v22.image_encoder.empty());
  EXPECT_FALSE(i2v22.transformer_low_noise.empty());
  EXPECT_EQ(i2v22.boundary_ratio, 0.9);
  EXPECT_EQ(i2v22.defaults.cfg, 3.5);
  EXPECT_EQ(i2v22.defaults.cfg_low_noise, 3.5);
  EXPECT_EQ(i2v22.defaults.shift, 5.0);
  EXPECT_EQ(i2v22.defaults.negative_prompt, wan::kNegativePrompt);

  const ModelManifest dif = load_manifest(diffusers_release(fs::path(dir.path) / "Wan2.1-I2V-14B-480P-Diffusers", "dit_i2v_weights.safetensors", false));
  EXPECT_EQ(dif.task, "i2v");
  EXPECT_EQ(weight_layout(dif, "image_encoder"), "huggingface");
  EXPECT_EQ(weight_layout(dif, "transformer"), "diffusers");
  EXPECT_EQ(dif.defaults.shift, 3.0);  // scheduler_config.json flow_shift
  EXPECT_EQ(dif.defaults.steps, 40);
  const ModelManifest dif_flf = load_manifest(diffusers_release(fs::path(dir.path) / "Wan2.1-FLF2V-14B-720P-diffusers", "dit_flf2v_weights.safetensors", true));
  EXPECT_EQ(dif_flf.task, "flf2v");
  EXPECT_EQ(dif_flf.transformer_config["image_pos_tokens"], 34);
  EXPECT_EQ(dif_flf.image_encoder_config["num_heads"], 4);  // image_encoder/config.json

  // `kino model` names the task and the image encoder.
  const auto shown = test::kino_cli("model " + test::shell_quote(dir / "Wan2.1-I2V-14B-480P-Diffusers"));
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("(wan2.1 i2v)"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("image encoder (CLIP)"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("image_encoder/model.safetensors (huggingface names)"), std::string::npos) << shown.out;

  // A CLIP of another activation is not Wan's.
  test::write_json(fs::path(dir.path) / "Wan2.1-I2V-14B-480P-Diffusers" / "image_encoder" / "config.json", {{"hidden_act", "quick_gelu"}});
  const auto refused = test::kino_cli("model " + test::shell_quote(dir / "Wan2.1-I2V-14B-480P-Diffusers"));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("hidden_act' is 'quick_gelu'"), std::string::npos) << refused.err;
}

// The files of a Diffusers release (the DiT and CLIP in Diffusers' and
// transformers' names) run WanI2V.generate() of the fixture: the official
// frames within 1/255. A kino.json names them and gives the tiny text length
// (a Diffusers folder does not record it: 512).
TEST(I2vFolders, ReleaseFilesReproduceTheOfficialFrames) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  const fs::path dif = diffusers_release(fs::path(dir.path) / "Wan2.1-I2V-14B-480P-Diffusers", "dit_i2v_weights.safetensors", false);
  test::write_json(fs::path(dir.path) / "dif" / "kino.json",
             {{"kino_manifest", 1},
              {"family", "wan2.1"},
              {"task", "i2v"},
              {"tokenizer", (dif / "tokenizer" / "spiece.model").string()},
              {"text_encoder", {{"weights", (dif / "text_encoder").string()}}},
              {"transformer", {{"weights", (dif / "transformer").string()}, {"config", {{"num_heads", 4}, {"text_len", 32}}}}},
              {"vae", {{"weights", (dif / "vae").string()}}},
              {"image_encoder", {{"weights", (dif / "image_encoder").string()}, {"config", {{"num_heads", 4}}}}},
              {"defaults", {{"negative_prompt", std::string("镜头晃动，") + wan::kNegativePrompt}}}});
  const Io io("i2v_e2e_io.safetensors");
  const at::Tensor ref = video_to_uint8(io["unipc.video"]).to(at::kInt);  // [F, H, W, 3]
  auto r = test::kino_cli("generate " + test::shell_quote(io.meta.at("prompt")) + " --model " + test::shell_quote(dir / "dif") +
                          " --image " + test::shell_quote(test::fixture("i2v_image.png", kSet)) +
                          " --seed 42 --size 64x48 --frames 9 --steps 4 --shift 5 --cfg 5 --threads 1 -o " +
                          test::shell_quote(dir / "f_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int64_t f = 0; f < ref.size(0); ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "f_%04d.png", static_cast<int>(f));
    const Image got = read_image(dir / name);
    ASSERT_EQ(got.width * got.height, 64 * 48);
    const at::Tensor g = at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {48, 64, 3}, at::kByte).to(at::kInt);
    EXPECT_LE((g - ref[f]).abs().max().item<int>(), 1) << "frame " << f;
  }
}
