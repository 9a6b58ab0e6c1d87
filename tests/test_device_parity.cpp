// Fixture parity on a GPU. Runs where KINO_TEST_DEVICE names an available
// device (`KINO_TEST_DEVICE=cuda build-cuda/tests/kino_tests --gtest_filter=DeviceParity*`
// on the CUDA machine, after scripts/gpu-build.sh); skipped elsewhere.
//  - float32, TF32 off: the same MANIFEST tolerances as on the CPU.
//  - bfloat16: the fixtures' float32 outputs are float64-accurate (MANIFEST
//    f32_vs_f64_*: ~1e-6), so they measure bf16 error directly. The bound is
//    derived, not picked: twice the error of the same module run in bf16 on
//    the CPU, i.e. the GPU's kernels may round differently but not worse
//    than 2x what bf16 arithmetic itself costs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "fixture_models.h"
#include "kino/manifest.h"
#include "loading/layouts.h"
#include "quant/blocks.h"
#include "quant/packed.h"
#include "wan/generator.h"
#include "support.h"

using namespace kino;

namespace {

std::optional<at::Device> test_device() {
  const char* name = std::getenv("KINO_TEST_DEVICE");
  if (!name || !*name) return std::nullopt;
  const at::Device d(name);
  if (d.is_cuda() && !at::hasCUDA()) return std::nullopt;
  return d;
}

#define KINO_REQUIRE_TEST_DEVICE()                                                       \
  KINO_REQUIRE_FIXTURES();                                                               \
  const std::optional<at::Device> device = test_device();                                \
  if (!device) GTEST_SKIP() << "set KINO_TEST_DEVICE (e.g. cuda) to run on that device"; \
  at::globalContext().setAllowTF32CuDNN(false);                                          \
  at::globalContext().setAllowTF32CuBLAS(false)

// `run(device, dtype)` -> output; checks float32 on the device against the
// MANIFEST tolerance and bf16 on the device against 2x bf16 on the CPU.
template <class Run>
void check_device(const at::Device& device, const at::Tensor& ref, const std::string& file, const std::string& name,
                  Run run) {
  const double f32 = test::rel_error(run(device, at::kFloat).to(at::kCPU, at::kFloat), ref);
  const double tol = test::tolerance(file, name);
  std::printf("[ f32    ] %-40s %s rel %.3e (tol %.0e)\n", name.c_str(), device.str().c_str(), f32, tol);
  EXPECT_LE(f32, tol) << name;
  const double cpu_bf16 = test::rel_error(run(at::Device(at::kCPU), at::kBFloat16).to(at::kFloat), ref);
  const double dev_bf16 = test::rel_error(run(device, at::kBFloat16).to(at::kCPU, at::kFloat), ref);
  std::printf("[ bf16   ] %-40s %s rel %.3e, cpu rel %.3e (bound %.3e)\n", name.c_str(), device.str().c_str(), dev_bf16,
              cpu_bf16, 2 * cpu_bf16);
  EXPECT_LE(dev_bf16, 2 * cpu_bf16) << name;
}

}  // namespace

TEST(DeviceParity, UMT5) {
  KINO_REQUIRE_TEST_DEVICE();
  auto io = test::load_tensors(test::fixture("t5_io.safetensors"));
  c10::InferenceMode inference;
  check_device(*device, io["out"][0], "t5_io.safetensors", "out", [&](at::Device d, at::ScalarType t) {
    UMT5Encoder enc = test::fixture_umt5();
    enc.to(at::TensorOptions().device(d).dtype(t));
    return enc.forward(io["ids"], io["mask"])[0];
  });
}

TEST(DeviceParity, WanDiT) {
  KINO_REQUIRE_TEST_DEVICE();
  auto io = test::load_tensors(test::fixture("dit_io.safetensors"));
  c10::InferenceMode inference;
  check_device(*device, io["a.out"], "dit_io.safetensors", "a.out", [&](at::Device d, at::ScalarType t) {
    WanDiT dit = test::fixture_dit();
    dit.to(d, t);
    return dit.forward({io["a.x"]}, {io["a.t"][0].item<double>()}, {io["a.context"]}, io["a.seq_len"].item<int64_t>())[0];
  });
}

TEST(DeviceParity, WanVAEDecode) {
  KINO_REQUIRE_TEST_DEVICE();
  auto io = test::load_tensors(test::fixture("vae_io.safetensors"));
  c10::InferenceMode inference;
  check_device(*device, io["decoded_raw"], "vae_io.safetensors", "decoded_raw", [&](at::Device d, at::ScalarType t) {
    WanVAE vae = test::fixture_vae();
    vae.to(d, t);
    return vae.decode_raw(io["latent"]);
  });
}

// Wan2.2 A14B's two experts in float32 on the device, the idle one waiting in
// host memory (the default: each visits the device for its run of steps) and
// both kept on the device: the final latent against the official run
// (wan22-tiny moe_e2e_io) at its tolerance, either way.
TEST(DeviceParity, Wan22ExpertsFromHostOrDevice) {
  KINO_REQUIRE_TEST_DEVICE();
  const std::string set = "wan22-tiny", file = "moe_e2e_io.safetensors";
  const auto io = test::load_tensors(test::fixture(file, set));
  const ModelManifest m = load_manifest(std::string(KINO_TEST_DATA_DIR) + "/wan22-moe-tiny.kino.json");
  const int64_t steps = io.at("timesteps").size(0);
  const at::Tensor ref = io.at("latents")[steps - 1];
  for (const auto idle : {WanGenerator::IdleExpert::Host, WanGenerator::IdleExpert::Device}) {
    const WanGenerator p(m, *device, at::kFloat, false, idle);
    const at::Tensor latent = p.sample(io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC,
                                       steps, m.defaults.shift, Guidance(m.defaults.cfg, *m.defaults.cfg_low_noise));
    const double err = test::rel_error(latent.cpu(), ref), tol = test::tolerance(file, "latents", set);
    std::printf("[ f32    ] wan22 latents, idle expert in %s: %s rel %.3e (tol %.0e)\n",
                idle == WanGenerator::IdleExpert::Host ? "host memory" : "device memory", device->str().c_str(), err, tol);
    EXPECT_LE(err, tol);
  }
}

// Wan2.1 I2V in float32 on the device: the CLIP encoder waits in host memory
// and visits the device once, the VAE encodes the condition there; the CLIP
// features, the condition and the final latent against the official run
// (wan-i2v-tiny i2v_e2e_io) at its tolerances.
TEST(DeviceParity, Wan21ImageToVideo) {
  KINO_REQUIRE_TEST_DEVICE();
  const std::string set = "wan-i2v-tiny", file = "i2v_e2e_io.safetensors";
  const auto io = test::load_tensors(test::fixture(file, set));
  const ModelManifest m = load_manifest(std::string(KINO_TEST_DATA_DIR) + "/wan21-i2v-tiny.kino.json");
  const WanGenerator g(m, *device, at::kFloat);
  const at::Tensor img = io.at("image_tensor");
  const at::Tensor geo = io.at("geometry");  // image_h, image_w, lat_h, lat_w, h, w
  const int64_t h = geo[4].item<int64_t>(), w = geo[5].item<int64_t>(), frames = io.at("unipc.video").size(1);
  auto check = [&](const at::Tensor& out, const std::string& name, const std::string& ref_name) {
    const double err = test::rel_error(out.cpu(), io.at(ref_name)), tol = test::tolerance(file, ref_name, set);
    std::printf("[ f32    ] i2v %-36s %s rel %.3e (tol %.0e)\n", name.c_str(), device->str().c_str(), err, tol);
    EXPECT_LE(err, tol) << name;
  };
  check(g.encode_clip({img}), "clip_fea", "clip_fea");
  check(g.image_condition(img, {}, frames, h, w), "y", "y");
  const int64_t steps = io.at("unipc.timesteps").size(0);
  SampleInputs inputs;
  inputs.condition = io.at("y");
  inputs.image_features = io.at("clip_fea");
  const at::Tensor latent = g.sample(io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC, steps, 5.0,
                                     io.at("guide_scale").item<double>(), {}, inputs);
  const double err = test::rel_error(latent.cpu(), io.at("unipc.latents")[steps - 1]);
  const double tol = test::tolerance(file, "unipc.latents", set);
  std::printf("[ f32    ] i2v final latent %s rel %.3e (tol %.0e)\n", device->str().c_str(), err, tol);
  EXPECT_LE(err, tol);
}

// --offload blocks on the device: the blocks' matrices in pinned host
// memory, copied on a side stream one block ahead; the output equals the
// resident model's on the same device (float32 and bf16).
TEST(DeviceParity, WanDiTStreamedBlocks) {
  KINO_REQUIRE_TEST_DEVICE();
  auto io = test::load_tensors(test::fixture("dit_io.safetensors"));
  c10::InferenceMode inference;
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    WanDiT resident = test::fixture_dit(), streamed = test::fixture_dit();
    resident.to(*device, t);
    streamed.to(at::kCPU, t);
    streamed.stream_blocks(*device);
    auto run = [&](const WanDiT& dit) {
      return dit.forward({io["a.x"]}, {io["a.t"][0].item<double>()}, {io["a.context"]}, io["a.seq_len"].item<int64_t>())[0].cpu();
    };
    for (int pass = 0; pass < 3; ++pass) EXPECT_TRUE(at::equal(run(streamed), run(resident))) << c10::toString(t) << " pass " << pass;
    EXPECT_LE(streamed.resident_blocks(), 2u);
  }
}

// The GPU's GGUF decoding (tensor operations on the device) equals the CPU
// loop, which the CPU tests hold bit-equal to gguf-py, for every quantised
// tensor of the wan-gguf-tiny files present (a GPU session may carry a few).
TEST(DeviceParity, GgufDecoders) {
  KINO_REQUIRE_TEST_DEVICE();
  const std::string dir = test::fixture_dir("wan-gguf-tiny");
  if (dir.empty()) GTEST_SKIP() << "wan-gguf-tiny fixtures not found";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gguf") continue;
    const TensorFile f = TensorFile::open(entry.path().string());
    for (const TensorView& v : f.tensors()) {
      if (!is_block_type(v.dtype)) continue;
      const int64_t cols = v.shape.back(), rows = v.numel() / cols;
      const at::Tensor bytes = at::from_blob(const_cast<uint8_t*>(v.data), {rows, quant::row_bytes(v.dtype, cols)}, at::kByte).clone();
      const at::Tensor cpu = decode_on_cpu(v.dtype, bytes, cols);
      const at::Tensor dev = decode_with_tensor_ops(v.dtype, bytes.to(*device), cols).cpu();
      EXPECT_TRUE(at::equal(cpu, dev)) << entry.path().filename() << ": " << v.name << " (" << dtype_name(v.dtype) << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

// VACE on the device: the VACE DiT with its hints (float32 at the fixture's
// tolerance, bf16 within 2x the CPU's bf16 error), and generate()'s
// inpainting case (context scale 0.6) in float32, the VACE context encoded
// there too.
TEST(DeviceParity, Vace) {
  KINO_REQUIRE_TEST_DEVICE();
  const std::string set = "wan21-vace-tiny";
  const auto dit_io = test::load_tensors(test::fixture("vace_dit_io.safetensors", set));
  c10::InferenceMode inference;
  auto forward = [&](at::Device d, at::ScalarType t) {
    nlohmann::json config = {{"num_heads", 4}, {"text_len", 32}, {"vace_layers", {0, 1, 3}}};
    Weights w(index_weights("wan2.1", "transformer", test::fixture("vace_dit_weights.safetensors", set), config));
    WanDiT dit(WanDiTConfig::from_json(config, "vace"), w);
    dit.to(d, t);
    const VaceInput vace{{dit_io.at("a.vace_context").to(d)}, 1.0};
    return dit.forward({dit_io.at("a.x")}, {717}, {dit_io.at("a.context")}, 36, nullptr, {}, {}, nullptr, &vace)[0].to(at::kCPU, at::kFloat);
  };
  const double f32 = test::rel_error(forward(*device, at::kFloat), dit_io.at("a.out"));
  const double tol = test::tolerance("vace_dit_io.safetensors", "a.out", set);
  std::printf("[ f32    ] vace a.out %s rel %.3e (tol %.0e)\n", device->str().c_str(), f32, tol);
  EXPECT_LE(f32, tol);
  const double cpu_bf16 = test::rel_error(forward(at::kCPU, at::kBFloat16), dit_io.at("a.out"));
  const double dev_bf16 = test::rel_error(forward(*device, at::kBFloat16), dit_io.at("a.out"));
  std::printf("[ bf16   ] vace a.out %s rel %.3e, cpu rel %.3e (bound %.3e)\n", device->str().c_str(), dev_bf16, cpu_bf16, 2 * cpu_bf16);
  EXPECT_LE(dev_bf16, 2 * cpu_bf16);

  const auto io = test::load_tensors(test::fixture("vace_e2e_io.safetensors", set));
  const ModelManifest m = load_manifest(std::string(KINO_TEST_DATA_DIR) + "/wan21-vace-tiny.kino.json");
  const WanGenerator g(m, *device, at::kFloat);
  const std::string file = "vace_e2e_io.safetensors";
  const at::Tensor z = g.vace_context(io.at("d_inpaint.src_video"), io.at("d_inpaint.src_mask")[0], {});
  const double ctx = test::rel_error(z.cpu(), io.at("d_inpaint.vace_context"));
  std::printf("[ f32    ] vace d_inpaint.vace_context %s rel %.3e\n", device->str().c_str(), ctx);
  EXPECT_LE(ctx, test::tolerance(file, "d_inpaint.vace_context", set));
  SampleInputs inputs;
  inputs.vace_context = z;
  inputs.context_scale = 0.6;
  const at::Tensor latent = g.sample(io.at("d_inpaint.noise"), io.at("d_inpaint.context_cond"), io.at("d_inpaint.context_uncond"),
                                     SamplerKind::UniPC, 4, 8.0, 4.0, {}, inputs);
  const double video = test::rel_error(g.decode(latent).cpu(), io.at("d_inpaint.video"));
  std::printf("[ f32    ] vace d_inpaint.video %s rel %.3e\n", device->str().c_str(), video);
  EXPECT_LE(video, test::tolerance(file, "d_inpaint.video", set));
}
