// The whole Wan text-to-video pipeline against WanGenerator.generate() on the tiny
// fixture: contexts, noise from the seed, every sampling step, the video.
#include <gtest/gtest.h>

#include <fstream>

#include "kino/error.h"
#include "kino/manifest.h"
#include "kino/model.h"
#include "wan/generator.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kFile = "e2e_io.safetensors";

std::string tiny_manifest() { return std::string(KINO_TEST_DATA_DIR) + "/wan21-tiny.kino.json"; }

WanGenerator& pipeline() {
  static WanGenerator p(load_manifest(tiny_manifest()), at::kCPU, at::kFloat);
  return p;
}

std::map<std::string, at::Tensor>& io() {
  static auto tensors = test::load_tensors(test::fixture(kFile));
  return tensors;
}

}  // namespace

TEST(Pipeline, ContextsMatch) {
  KINO_REQUIRE_FIXTURES();
  const ModelManifest m = load_manifest(tiny_manifest());
  TensorFile f = TensorFile::open(test::fixture(kFile));
  EXPECT_EQ(m.defaults.negative_prompt, f.metadata().at("negative_prompt"));
  EXPECT_PARITY(pipeline().encode_text(f.metadata().at("prompt")), io()["context_cond"], kFile, "context_cond");
  EXPECT_PARITY(pipeline().encode_text(m.defaults.negative_prompt), io()["context_uncond"], kFile, "context_uncond");
}

TEST(Pipeline, SeededNoiseIsTorchRandn) {
  KINO_REQUIRE_FIXTURES();
  // generate(seed=42) drew randn(16, 3, 6, 8) from a CPU generator seeded with 42.
  EXPECT_TRUE(at::equal(seeded_noise(42, pipeline().latent_shape(9, 48, 64)), io()["noise"]));
}

class EndToEnd : public ::testing::TestWithParam<const char*> {};

TEST_P(EndToEnd, EveryStepAndTheVideoMatch) {
  KINO_REQUIRE_FIXTURES();
  const std::string s = GetParam();
  const std::string p = s + ".";
  const SamplerKind kind = s == "unipc" ? SamplerKind::UniPC : SamplerKind::DPMpp;
  Schedule sched = make_schedule(kind, 4, 5.0);
  EXPECT_TRUE(at::equal(at::tensor(sched.timesteps, at::kLong), io()[p + "timesteps"]));
  EXPECT_TRUE(at::equal(at::tensor(sched.sigmas), io()[p + "sigmas"]));
  const double cfg = io()["guide_scale"].item<double>();
  at::Tensor latent = pipeline().sample(io()["noise"], io()["context_cond"], io()["context_uncond"], kind, 4, 5.0, cfg,
                                        [&](const WanGenerator::Step& st) {
                                          EXPECT_PARITY(st.cond, io()[p + "noise_pred_cond"][st.index], kFile, p + "noise_pred_cond");
                                          EXPECT_PARITY(st.uncond, io()[p + "noise_pred_uncond"][st.index], kFile, p + "noise_pred_uncond");
                                          EXPECT_PARITY(st.guided, io()[p + "noise_pred"][st.index], kFile, p + "noise_pred");
                                          EXPECT_PARITY(st.latent, io()[p + "latents"][st.index], kFile, p + "latents");
                                        });
  at::Tensor video = pipeline().decode(latent);
  EXPECT_PARITY(video, io()[p + "video"], kFile, p + "video");
}

INSTANTIATE_TEST_SUITE_P(Solvers, EndToEnd, ::testing::Values("unipc", "dpmpp"));

TEST(Pipeline, FramesToBytesRoundAndClamp) {
  at::Tensor v = at::tensor({-2.0f, -1.0f, 0.0f, 1.0f, 3.0f, -0.998f}).view({3, 1, 1, 2});
  at::Tensor b = video_to_uint8(v);
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{1, 1, 2, 3}));
  // round(clamp((x + 1) / 2, 0, 1) * 255): channel-last.
  EXPECT_EQ(b[0][0][0][0].item<uint8_t>(), 0);
  EXPECT_EQ(b[0][0][0][1].item<uint8_t>(), 128);  // 127.5, half to even
  EXPECT_EQ(b[0][0][0][2].item<uint8_t>(), 255);
  EXPECT_EQ(b[0][0][1][2].item<uint8_t>(), 0);    // (-0.998 + 1) / 2 * 255 = 0.255 -> 0
}

TEST(Pipeline, ManifestErrorsNameTheFileAndField) {
  test::TempDir dir;
  auto expect_error = [&](const std::string& body, const std::string& part) {
    std::ofstream(dir / "kino.json") << body;
    try {
      load_manifest(dir.path);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("kino.json"), std::string::npos) << e.what();
    }
  };
  expect_error("{", "not valid JSON");
  expect_error(R"({"kino_manifest": 2})", "kino_manifest");
  expect_error(R"({"kino_manifest": 1, "tokenizer": "nope.model"})", "tokenizer file not found");
  EXPECT_THROW(load_manifest(dir / "absent"), Error);
}

// The bench manifests hold the real Wan2.1 shapes; their weight files are
// absent (kino-bench makes random weights), which only kino-bench may accept.
TEST(Pipeline, BenchManifestsNeedNoWeightFilesOnlyWhenAskedTo) {
  const std::string path = std::string(KINO_SOURCE_DIR) + "/bench/models/wan2.1-t2v-1.3b.kino.json";
  try {
    load_manifest(path);
    ADD_FAILURE() << "missing weight files accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text_encoder file not found"), std::string::npos) << e.what();
  }
  const ModelManifest m = load_manifest(path, /*weights_required=*/false);
  const WanDiTConfig dit = dit_config(m);
  EXPECT_EQ(dit.dim, 1536);
  EXPECT_EQ(dit.num_layers, 30);
  EXPECT_EQ(umt5_config(m).dim, 4096);
  EXPECT_EQ(vae_config(m).dim, 96);
  EXPECT_EQ(dit_config(load_manifest(std::string(KINO_SOURCE_DIR) + "/bench/models/wan2.1-t2v-14b.kino.json", false)).dim, 5120);
  // Wan2.2: TI2V-5B (48 channels, the Wan2.2 VAE) and T2V-A14B (two experts).
  const ModelManifest ti2v = load_manifest(std::string(KINO_SOURCE_DIR) + "/bench/models/wan2.2-ti2v-5b.kino.json", false);
  EXPECT_EQ(dit_config(ti2v).in_dim, 48);
  EXPECT_TRUE(vae_config(ti2v).wan22);
  EXPECT_EQ(vae_config(ti2v).spatial_stride(), 16);
  EXPECT_EQ(vae_config(ti2v).latents_mean.size(), 48u);
  const ModelManifest a14b = load_manifest(std::string(KINO_SOURCE_DIR) + "/bench/models/wan2.2-t2v-a14b.kino.json", false);
  EXPECT_EQ(a14b.boundary_ratio, 0.875);
  EXPECT_EQ(dit_config(a14b, true).dim, 5120);
  // Wan2.1 I2V-14B-480P: 36 input channels, CLIP ViT-H/14 features of width 1280.
  const ModelManifest i2v = load_manifest(std::string(KINO_SOURCE_DIR) + "/bench/models/wan2.1-i2v-14b.kino.json", false);
  EXPECT_EQ(i2v.task, "i2v");
  EXPECT_EQ(dit_config(i2v).in_dim, 36);
  EXPECT_EQ(dit_config(i2v).image_dim, clip_config(i2v).dim);
  EXPECT_EQ(clip_config(i2v).grid(), 16);  // 257 image tokens
  const ModelDescription d = describe_model(i2v);
  EXPECT_EQ(d.needs, std::vector<std::string>{"image"});
  EXPECT_EQ(d.size_for_image(1000, 750, 832 * 480), (std::pair<int64_t, int64_t>{720, 544}));  // image2video.py's geometry
}
