// Wan2.2 against the official code (../shared/fixtures/wan22-tiny): the
// T2V-A14B pipeline (two experts switched at the boundary timestep), the
// Wan2.2 VAE, the TI2V-5B DiT (per-token timesteps) and the TI2V-5B
// pipeline (text-to-video and image-to-video).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "media/image.h"
#include "loading/layouts.h"
#include "kino/manifest.h"
#include "kino/pipeline.h"
#include "wan/generator.h"
#include "wan/release.h"
#include "wan/ti2v_image.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kSet = "wan22-tiny";
const std::string kMoe = "moe_e2e_io.safetensors";

std::string moe_manifest() { return std::string(KINO_TEST_DATA_DIR) + "/wan22-moe-tiny.kino.json"; }

// A module of the fixture set from its weight file (official names).
template <typename Module, typename Config>
Module load22(const std::string& file, const std::string& component, const Config& cfg) {
  Weights w(index_weights("wan2.2", component, test::fixture(file, kSet)));
  Module m(cfg, w);
  w.finish();
  return m;
}

#define EXPECT_PARITY22(out, ref, file, name) EXPECT_PARITY_IN(kSet, "wan22", out, ref, file, name)

}  // namespace

// WanGenerator.generate() of Wan2.2 with the two tiny experts: contexts, which
// expert runs and with which guide scale at every step, every step's
// velocities and latent, the video.
TEST(Wan22Moe, EveryStepTheExpertAndTheVideoMatch) {
  KINO_REQUIRE_FIXTURES();
  const ModelManifest m = load_manifest(moe_manifest());
  WanGenerator p(m, at::kCPU, at::kFloat);
  ASSERT_TRUE(p.has_low_noise_expert());
  const auto io = test::load_tensors(test::fixture(kMoe, kSet));
  const TensorFile meta = TensorFile::open(test::fixture(kMoe, kSet));
  EXPECT_PARITY22(p.encode_text(meta.metadata().at("prompt")), io.at("context_cond"), kMoe, "context_cond");
  EXPECT_PARITY22(p.encode_text(m.defaults.negative_prompt), io.at("context_uncond"), kMoe, "context_uncond");

  EXPECT_DOUBLE_EQ(m.boundary_ratio * 1000, io.at("boundary_timestep").item<double>());
  const at::Tensor scales = io.at("guide_scales_low_high");  // (low, high)
  EXPECT_EQ(m.defaults.cfg, scales[1].item<double>());
  EXPECT_EQ(m.defaults.cfg_low_noise, scales[0].item<double>());
  const int64_t steps = io.at("timesteps").size(0);
  const Schedule sched = make_schedule(SamplerKind::UniPC, steps, m.defaults.shift);
  EXPECT_TRUE(at::equal(at::tensor(sched.timesteps, at::kLong), io.at("timesteps")));

  // generate(seed=1234) drew the noise as kino does from a seed.
  EXPECT_TRUE(at::equal(seeded_noise(1234, p.latent_shape(9, 48, 64)), io.at("noise")));

  int64_t seen = 0;
  const at::Tensor latent = p.sample(
      io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC, steps, m.defaults.shift,
      Guidance(m.defaults.cfg, *m.defaults.cfg_low_noise), [&](const WanGenerator::Step& s) {
        ++seen;
        const int64_t i = s.index;
        EXPECT_EQ(s.low_noise_expert, io.at("expert_is_high_noise")[i].item<int64_t>() == 0) << "step " << i;
        EXPECT_EQ(s.guidance, io.at("guide_scale_per_step")[i].item<double>()) << "step " << i;
        EXPECT_PARITY22(s.cond, io.at("noise_pred_cond")[i], kMoe, "noise_pred_cond");
        EXPECT_PARITY22(s.uncond, io.at("noise_pred_uncond")[i], kMoe, "noise_pred_uncond");
        EXPECT_PARITY22(s.guided, io.at("noise_pred")[i], kMoe, "noise_pred");
        EXPECT_PARITY22(s.latent, io.at("latents")[i], kMoe, "latents");
      });
  EXPECT_EQ(seen, steps);
  // Both experts ran: the switch is exercised, not one expert alone.
  EXPECT_EQ(io.at("expert_is_high_noise").sum().item<int64_t>(), 4);
  EXPECT_PARITY22(p.decode(latent), io.at("video"), kMoe, "video");

  // The real 40-step, shift-12 schedule switches where the official code does.
  const at::Tensor real_t = io.at("real_schedule.timesteps");
  const Schedule real = make_schedule(SamplerKind::UniPC, real_t.size(0), 12.0);
  EXPECT_TRUE(at::equal(at::tensor(real.timesteps, at::kLong), real_t));
  for (int64_t i = 0; i < real_t.size(0); ++i)
    EXPECT_EQ(static_cast<double>(real.timesteps[static_cast<size_t>(i)]) >= m.boundary_ratio * 1000,
              io.at("real_schedule.expert_is_high_noise")[i].item<int64_t>() == 1)
        << "step " << i;
}

// One --cfg guides both experts (the official single float); the manifest's
// pair is the default; --cfg-low-noise sets the low-noise expert's alone.
TEST(Wan22Moe, GuidanceScalesResolvePerExpert) {
  KINO_REQUIRE_FIXTURES();
  RuntimeOptions rt;
  rt.threads = 1;
  Pipeline p(load_manifest(moe_manifest()), rt);
  GenerationRequest r;
  r.prompt = "a cat";
  GenerationSettings s = p.resolve(r);
  EXPECT_EQ(s.cfg, 4.0);
  EXPECT_EQ(s.cfg_low_noise, 3.0);
  r.cfg = 5.0;
  s = p.resolve(r);
  EXPECT_EQ(s.cfg_low_noise, 5.0);
  r.cfg_low_noise = 2.0;
  s = p.resolve(r);
  EXPECT_EQ(s.cfg, 5.0);
  EXPECT_EQ(s.cfg_low_noise, 2.0);

  // A one-transformer model has one scale.
  Pipeline one(load_manifest(test::fixture_manifest_path()), rt);
  s = one.resolve(r);
  EXPECT_EQ(s.cfg_low_noise, s.cfg);
}

// The release folders of Wan2.2 T2V-A14B given to --model: the official one
// (high_noise_model/, low_noise_model/) and the Diffusers one (transformer_2,
// boundary_ratio), built here from the fixture's files, load as the
// two-expert model with the A14B defaults.
TEST(Wan22Moe, ReleaseFoldersAreTwoExpertModels) {
  KINO_REQUIRE_FIXTURES();
  namespace fs = std::filesystem;
  using Json = nlohmann::json;
  const std::string high = test::fixture("moe_high_noise_model_weights.safetensors", kSet);
  const std::string low = test::fixture("moe_low_noise_model_weights.safetensors", kSet);
  const Json wan_model = {{"_class_name", "WanModel"}, {"model_type", "t2v"}, {"dim", 64}, {"ffn_dim", 128}, {"num_heads", 4},
                          {"num_layers", 2}, {"in_dim", 16}, {"out_dim", 16}, {"text_len", 32}, {"eps", 1e-6}, {"freq_dim", 256}};
  test::TempDir off;
  for (const auto& [folder, weights] : {std::pair<std::string, std::string>{"high_noise_model", high}, {"low_noise_model", low}}) {
    fs::create_directories(off / folder);
    std::ofstream(off / folder + "/config.json") << wan_model.dump();
    fs::create_symlink(weights, off / folder + "/diffusion_pytorch_model.safetensors");
  }
  fs::create_directories(off / "google/umt5-xxl");
  fs::create_symlink(test::fixture("tokenizer.model"), off / "google/umt5-xxl/spiece.model");
  fs::create_symlink(test::fixture("t5_weights.safetensors"), off / "models_t5_umt5-xxl-enc-bf16.pth");
  fs::create_symlink(test::fixture("vae_weights.safetensors"), off / "Wan2.1_VAE.pth");

  const ModelManifest m = load_manifest(off.path);
  EXPECT_EQ(m.family, "wan2.2");
  EXPECT_EQ(m.transformer, off / "high_noise_model/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(m.transformer_low_noise, off / "low_noise_model/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(m.boundary_ratio, 0.875);
  EXPECT_EQ(m.defaults.shift, 12.0);
  EXPECT_EQ(m.defaults.steps, 40);
  EXPECT_EQ(m.defaults.cfg, 4.0);
  EXPECT_EQ(m.defaults.cfg_low_noise, 3.0);
  EXPECT_EQ(m.defaults.negative_prompt, wan::kNegativePrompt);

  // The same model as the fixture manifest: its first step matches.
  const auto io = test::load_tensors(test::fixture(kMoe, kSet));
  WanGenerator p(m, at::kCPU, at::kFloat);
  p.sample(io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC, 6, 12.0, Guidance(4.0, 3.0),
           [&](const WanGenerator::Step& s) { EXPECT_PARITY22(s.latent, io.at("latents")[s.index], kMoe, "latents"); });

  test::TempDir dif;
  std::ofstream(dif / "model_index.json") << Json{{"_class_name", "WanPipeline"}, {"boundary_ratio", 0.875},
                                                   {"transformer", {"diffusers", "WanTransformer3DModel"}},
                                                   {"transformer_2", {"diffusers", "WanTransformer3DModel"}}}
                                                  .dump();
  for (const auto& [folder, weights] : {std::pair<std::string, std::string>{"transformer", high}, {"transformer_2", low}}) {
    fs::create_directories(dif / folder);
    std::ofstream(dif / folder + "/config.json") << Json{{"num_attention_heads", 4}}.dump();
    fs::create_symlink(weights, dif / folder + "/diffusion_pytorch_model.safetensors");
  }
  for (const char* folder : {"tokenizer", "text_encoder", "vae"}) fs::create_directories(dif / folder);
  fs::create_symlink(test::fixture("tokenizer.model"), dif / "tokenizer/spiece.model");
  fs::create_symlink(test::fixture("t5_weights.safetensors"), dif / "text_encoder/model.safetensors");
  fs::create_symlink(test::fixture("vae_weights.safetensors"), dif / "vae/diffusion_pytorch_model.safetensors");
  std::ofstream(dif / "vae/config.json") << "{}";
  const ModelManifest d = load_manifest(dif.path);
  EXPECT_EQ(d.family, "wan2.2");
  EXPECT_EQ(d.transformer_low_noise, dif / "transformer_2/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(d.boundary_ratio, 0.875);
  EXPECT_EQ(d.transformer_low_noise_config["num_heads"], 4);
}

// ---- The Wan2.2 VAE (vae2_2.py through the Wan2_2_VAE wrapper) ----

namespace {

const std::string kVae = "vae22_io.safetensors";

WanVAE vae22() {
  WanVAEConfig c = WanVAEConfig::wan22_defaults();
  c.dim = 4;
  c.dec_dim = 8;
  return load22<WanVAE>("vae22_weights.safetensors", "vae", c);
}

}  // namespace

TEST(Wan22Vae, BlocksConstantsAndConfigAreTheOfficialOnes) {
  KINO_REQUIRE_FIXTURES();
  const auto io = test::load_tensors(test::fixture(kVae, kSet));
  EXPECT_TRUE(at::equal(vae_patchify(io.at("unit.patchify_in")), io.at("unit.patchify_out")));
  EXPECT_TRUE(at::equal(vae_unpatchify(io.at("unit.patchify_out")), io.at("unit.patchify_in")));
  EXPECT_PARITY22(vae_avg_down(io.at("unit.avgdown_in"), 8, 2, 2), io.at("unit.avgdown_out"), kVae, "unit.avgdown_out");
  EXPECT_TRUE(at::equal(vae_dup_up(io.at("unit.dupup_in"), 4, 2, 2, false), io.at("unit.dupup_out")));
  EXPECT_TRUE(at::equal(vae_dup_up(io.at("unit.dupup_in"), 4, 2, 2, true), io.at("unit.dupup_out_first_chunk")));

  const WanVAEConfig c = WanVAEConfig::wan22_defaults();
  EXPECT_TRUE(at::equal(at::tensor(c.latents_mean), io.at("mean")));
  EXPECT_TRUE(at::equal(at::tensor(c.latents_std), io.at("std")));
  EXPECT_TRUE(at::equal(1.0f / at::tensor(c.latents_std), io.at("inv_std")));
  EXPECT_EQ(c.spatial_stride(), 16);

  const std::string path = test::fixture("vae22_weights.safetensors", kSet);
  const TensorSet set = TensorSet::open(path);
  const nlohmann::json inferred = infer_config("wan2.2", "vae", set, official_names("wan2.2", "vae", set.names(), path));
  EXPECT_EQ(inferred, (nlohmann::json{{"dim", 4}, {"dec_dim", 8}, {"z_dim", 48}, {"is_residual", true}}));
}

TEST(Wan22Vae, EncodeMatchesReference) {
  KINO_REQUIRE_FIXTURES();
  const auto io = test::load_tensors(test::fixture(kVae, kSet));
  const WanVAE vae = vae22();
  c10::InferenceMode inference;
  Trace trace;
  const at::Tensor latent = vae.encode(io.at("video"), &trace);
  for (const char* name : {"inter.enc.level0", "inter.enc.level1", "inter.enc.level1_avg_shortcut", "inter.enc.level2",
                           "inter.enc.level3", "inter.enc.middle_attn", "inter.enc.middle", "inter.enc.head", "mu_raw"})
    EXPECT_PARITY22(trace.at(name), io.at(name), kVae, name);
  EXPECT_PARITY22(latent, io.at("latent"), kVae, "latent");
  EXPECT_PARITY22(latent, io.at("latent_f64"), kVae, "latent_f64");
  // The first frame alone (image-to-video) encodes to the first latent frame.
  EXPECT_PARITY22(vae.encode(io.at("video").slice(1, 0, 1)), io.at("latent_frame0_only"), kVae, "latent_frame0_only");
}

TEST(Wan22Vae, ChunkedDecodeMatchesReference) {
  KINO_REQUIRE_FIXTURES();
  const auto io = test::load_tensors(test::fixture(kVae, kSet));
  const WanVAE vae = vae22();
  c10::InferenceMode inference;
  EXPECT_PARITY22(vae.decode_raw(io.at("latent")), io.at("decoded_raw"), kVae, "decoded_raw");
  EXPECT_PARITY22(vae.decode_raw(io.at("latent")), io.at("decoded_raw_f64"), kVae, "decoded_raw_f64");
  EXPECT_PARITY22(vae.decode(io.at("latent")), io.at("decoded"), kVae, "decoded");
  Trace trace;
  const at::Tensor raw5 = vae.decode_raw(io.at("z5"), &trace);
  for (const char* name : {"inter.dec.conv2", "inter.dec.conv1", "inter.dec.middle_attn", "inter.dec.middle", "inter.dec.level0",
                           "inter.dec.level0_dup_shortcut", "inter.dec.level1"})
    EXPECT_PARITY22(trace.at(name), io.at(name), kVae, name);
  EXPECT_PARITY22(raw5, io.at("decoded5_raw"), kVae, "decoded5_raw");
  EXPECT_PARITY22(vae.decode(io.at("z5")), io.at("decoded5"), kVae, "decoded5");
}

// ---- The Wan2.2 DiT: TI2V-5B's 48 channels, per-token timesteps ----

namespace {

const std::string kDit = "dit22_ti2v_io.safetensors";

WanDiT dit22() {
  const std::string path = test::fixture("dit22_ti2v_weights.safetensors", kSet);
  const TensorSet set = TensorSet::open(path);
  const nlohmann::json inferred = infer_config("wan2.2", "transformer", set, official_names("wan2.2", "transformer", set.names(), path));
  WanDiTConfig c;
  c.in_dim = inferred["in_dim"];
  c.out_dim = inferred["out_dim"];
  c.dim = inferred["dim"];
  c.ffn_dim = inferred["ffn_dim"];
  c.text_dim = inferred["text_dim"];
  c.num_layers = inferred["num_layers"];
  c.num_heads = 4;
  c.text_len = 32;
  return load22<WanDiT>("dit22_ti2v_weights.safetensors", "transformer", c);
}

}  // namespace

// a/b: one timestep for all tokens (as Wan2.1); c: latent frame 0's tokens at
// t = 0 (TI2V image-to-video), with every intermediate; d: a ragged batch of
// two samples, each with its first frame at 0.
TEST(Wan22Dit, PerTokenTimestepsMatchTheOfficialModel) {
  KINO_REQUIRE_FIXTURES();
  const auto io = test::load_tensors(test::fixture(kDit, kSet));
  const WanDiT dit = dit22();
  EXPECT_EQ(dit.config().in_dim, 48);
  c10::InferenceMode inference;
  const int64_t seq_len = io.at("seq_len").item<int64_t>();
  const at::Tensor x = io.at("x"), ctx = io.at("context");

  Trace a;
  const at::Tensor out_a = dit.forward({x}, {717}, {ctx}, seq_len, &a)[0];
  EXPECT_PARITY22(out_a, io.at("a.out"), kDit, "a.out");
  EXPECT_PARITY22(out_a, io.at("b.out"), kDit, "b.out");
  EXPECT_PARITY22(a.at("e").unsqueeze(1).expand({1, seq_len, -1}), io.at("a.e"), kDit, "a.e");
  // A first frame at the same timestep is the one-timestep model exactly.
  EXPECT_TRUE(at::equal(dit.forward({x}, {717}, {ctx}, seq_len, nullptr, {717})[0], out_a));

  Trace c;
  const at::Tensor out_c = dit.forward({x}, {717}, {ctx}, seq_len, &c, {0})[0];
  for (const char* name : {"e", "e0", "patch_embedding_out", "context_embedded", "block0_self_q_roped", "block0_self_k_roped",
                           "block0_self_v", "block0_self_attn_core", "block0_self_attn_out", "block0_cross_q", "block0_cross_k",
                           "block0_cross_v", "block0_cross_attn_core", "block0_cross_attn_out", "block0_ffn_out", "block0_out",
                           "block1_out", "head_out"})
    EXPECT_PARITY22(c.at(name), io.at(std::string("c.") + name), kDit, std::string("c.") + name);
  EXPECT_PARITY22(out_c, io.at("c.out"), kDit, "c.out");
  EXPECT_GT(test::rel_error(out_c, out_a), 0.1);  // the first frame's timestep matters

  const std::vector<at::Tensor> d = dit.forward({x, io.at("d.x1")}, {717, 250}, {ctx, io.at("d.context1")}, seq_len, nullptr, {0, 0});
  EXPECT_PARITY22(d[0], io.at("d.out0"), kDit, "d.out0");
  EXPECT_PARITY22(d[1], io.at("d.out1"), kDit, "d.out1");
}

// ---- The TI2V-5B pipeline (textimage2video.py) ----

namespace {

const std::string kTi2v = "ti2v_e2e_io.safetensors";
std::string ti2v_manifest() { return std::string(KINO_TEST_DATA_DIR) + "/wan22-ti2v-tiny.kino.json"; }

}  // namespace

// Text-to-video and image-to-video, every step: velocities, latents, the
// per-token timesteps' effect (frame 0 at t = 0, written back), the video.
TEST(Wan22Ti2v, TextAndImageToVideoMatchEveryStep) {
  KINO_REQUIRE_FIXTURES();
  const ModelManifest m = load_manifest(ti2v_manifest());
  WanGenerator p(m, at::kCPU, at::kFloat);
  ASSERT_TRUE(p.takes_first_frame());
  EXPECT_EQ(p.size_multiple(), 32);
  const auto io = test::load_tensors(test::fixture(kTi2v, kSet));
  const TensorFile meta = TensorFile::open(test::fixture(kTi2v, kSet));
  EXPECT_PARITY22(p.encode_text(meta.metadata().at("prompt")), io.at("context_cond"), kTi2v, "context_cond");
  EXPECT_PARITY22(p.encode_text(m.defaults.negative_prompt), io.at("context_uncond"), kTi2v, "context_uncond");
  EXPECT_TRUE(at::equal(seeded_noise(42, p.latent_shape(9, 64, 96)), io.at("noise")));
  const int64_t steps = io.at("timesteps").size(0);
  EXPECT_TRUE(at::equal(at::tensor(make_schedule(SamplerKind::UniPC, steps, 5.0).timesteps, at::kLong), io.at("timesteps")));
  const double cfg = io.at("guide_scale").item<double>();

  for (const std::string run : {"t2v", "i2v"}) {
    const std::string r = run + ".";
    at::Tensor first;
    if (run == "i2v") {
      // The image (already at the output size) as the official code feeds it.
      const at::Tensor img = image_to_tensor(test::image_of(io.at("i2v.image_u8")));
      EXPECT_TRUE(at::equal(img, io.at("i2v.image_tensor")));
      first = p.encode_image(img);
      EXPECT_PARITY22(first, io.at("i2v.z"), kTi2v, "i2v.z");
      // Frame 0's tokens run at t = 0, the others at the step's t.
      EXPECT_EQ(io.at("i2v.t_per_token")[0].slice(0, 0, 6).sum().item<double>(), 0.0);
    }
    SampleInputs image;
    image.first_frame = first;
    const at::Tensor latent = p.sample(
        io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC, steps, 5.0, cfg,
        [&](const WanGenerator::Step& s) {
          EXPECT_PARITY22(s.cond, io.at(r + "noise_pred_cond")[s.index], kTi2v, r + "noise_pred_cond");
          EXPECT_PARITY22(s.uncond, io.at(r + "noise_pred_uncond")[s.index], kTi2v, r + "noise_pred_uncond");
          EXPECT_PARITY22(s.guided, io.at(r + "noise_pred")[s.index], kTi2v, r + "noise_pred");
          EXPECT_PARITY22(s.latent, io.at(r + "latents")[s.index], kTi2v, r + "latents");
        },
        image);
    EXPECT_PARITY22(p.decode(latent), io.at(r + "video"), kTi2v, r + "video");
  }
}

// The official image preprocessing: best_output_size on real and odd sizes,
// and a 150x80 image scaled by PIL's LANCZOS to 120x64 and cropped to
// 96x64, to the byte.
TEST(Wan22Ti2v, ImagePreprocessingIsTheOfficialOne) {
  KINO_REQUIRE_FIXTURES();
  const auto io = test::load_tensors(test::fixture(kTi2v, kSet));
  const at::Tensor table = io.at("preprocess.best_output_size_table");
  ASSERT_EQ(table.size(1), 5);
  for (int64_t i = 0; i < table.size(0); ++i) {
    const auto row = [&](int64_t k) { return table[i][k].item<int64_t>(); };
    EXPECT_EQ(best_output_size(row(0), row(1), 32, 32, row(2)), std::make_pair(row(3), row(4)))
        << row(0) << "x" << row(1) << " in " << row(2);
  }
  const Image prepared = prepare_first_frame(test::image_of(io.at("preprocess.image_u8")), 32, io.at("i2v.max_area").item<int64_t>());
  ASSERT_EQ(prepared.width, 96);
  ASSERT_EQ(prepared.height, 64);
  const at::Tensor got = image_to_tensor(prepared);
  const at::Tensor ref = io.at("preprocess.image_tensor");
  EXPECT_TRUE(at::equal(got, ref)) << "max difference " << (got - ref).abs().max().item<double>() * 127.5 << " of 255";
}
