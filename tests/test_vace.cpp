// Wan2.1 VACE against the official code (../shared/fixtures/wan21-vace-tiny):
// the VACE DiT with its hints, the VACE context (frames, mask, references),
// prepare_source's reading of videos, masks and references, WanVace.generate()
// step by step in its four modes, and the CLI from PNG and MP4 inputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kino/error.h"
#include "kino/manifest.h"
#include "kino/model.h"
#include "kino/runner.h"
#include "loading/layouts.h"
#include "loading/tensor_file.h"
#include "media/image.h"
#include "media/video_reader.h"
#include "nn/tensors.h"
#include "pipeline/resolve.h"
#include "wan/generator.h"
#include "wan/vace_inputs.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kSet = "wan21-vace-tiny";

std::string manifest() { return std::string(KINO_TEST_DATA_DIR) + "/wan21-vace-tiny.kino.json"; }

#define EXPECT_PARITY_VACE(out, ref, file, name) EXPECT_PARITY_IN(kSet, "vace", out, ref, file, name)

struct Io : test::FixtureIo {
  explicit Io(const std::string& file) : FixtureIo(file, kSet) {}
};

// uint8 [T, H, W, 3] frames as the [3, T, H, W] video in [-1, 1] they stand for.
at::Tensor video_of(const at::Tensor& u8) { return vace_resize_crop(u8, u8.size(1), u8.size(2)); }

// A fixture's uint8 [H, W, 3] image as [3, H, W] in [-1, 1] (TF.to_tensor . sub(0.5) . div(0.5)).
at::Tensor image_tensor(const at::Tensor& u8) { return image_to_tensor(test::image_of(u8)).squeeze(1); }

// floor(clamp((x + 1) / 2, 0, 1) * 255 + 0.5) of a [3, T, H, W] video, as [T, H, W, 3].
at::Tensor to_u8(const at::Tensor& video) {
  return ((video.clamp(-1, 1) + 1) / 2 * 255 + 0.5).floor().permute({1, 2, 3, 0}).to(at::kInt);
}

}  // namespace

// VaceWanModel.forward: the VACE tokens, before_proj, every VACE block and
// hint, every main block (hints added after blocks 0, 1 and 3, none after
// 2), the head; then 4 padded rows and context_scale 0.5.
TEST(Vace, DitMatchesEveryIntermediateAndHint) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "vace_dit_io.safetensors";
  nlohmann::json config = {{"num_heads", 4}, {"text_len", 32}, {"vace_layers", {0, 1, 3}}};
  Weights w(index_weights("wan2.1", "transformer", test::fixture("vace_dit_weights.safetensors", kSet), config));
  EXPECT_EQ(config["vace_in_dim"], 96);
  EXPECT_EQ(config["num_layers"], 4);
  const WanDiT dit(WanDiTConfig::from_json(config, "vace"), w);
  w.finish();  // every tensor of the checkpoint taken
  const Io io(file);
  c10::InferenceMode inference;
  for (const std::string c : {"a", "b"}) {
    const std::string p = c + ".";
    const VaceInput vace{{io["a.vace_context"]}, io[p + "context_scale"].item<double>()};
    Trace trace;
    const at::Tensor out = dit.forward({io["a.x"]}, {io["a.t"][0].item<double>()}, {io["a.context"]}, io[p + "seq_len"].item<int64_t>(),
                                       &trace, {}, {}, nullptr, &vace)[0];
    EXPECT_PARITY_VACE(out, io[p + "out"], file, p + "out");
    for (int n = 0; n < 3; ++n) {
      const std::string hint = "hint" + std::to_string(n);
      EXPECT_PARITY_VACE(trace.at(hint)[0], io[p + hint], file, p + hint);
    }
    if (c != "a") continue;
    for (const char* name : {"x_tokens", "vace_tokens", "vace_before_proj", "context_embedded", "head_out"})
      EXPECT_PARITY_VACE(trace.at(name)[0], io[p + name], file, p + name);
    EXPECT_PARITY_VACE(trace.at("e")[0], io["a.e"], file, "a.e");
    EXPECT_PARITY_VACE(trace.at("e0")[0], io["a.e0"], file, "a.e0");
    for (int n = 0; n < 3; ++n) {
      const std::string name = "vace_block" + std::to_string(n) + ".c";
      EXPECT_PARITY_VACE(trace.at(name)[0], io[p + name], file, p + name);
    }
    for (int i = 0; i < 4; ++i)
      EXPECT_PARITY_VACE(trace.at("block" + std::to_string(i) + "_out")[0], io[p + "block" + std::to_string(i) + ".out"], file,
                         p + "block" + std::to_string(i) + ".out");
  }
  // The VACE transformer needs its context; the scale 0 leaves the hints out.
  EXPECT_THROW(dit.forward({io["a.x"]}, {717}, {io["a.context"]}, 36), Error);
  const VaceInput off{{io["a.vace_context"]}, 0.0}, on{{io["a.vace_context"]}, 1.0};
  EXPECT_FALSE(at::equal(dit.forward({io["a.x"]}, {717}, {io["a.context"]}, 36, nullptr, {}, {}, nullptr, &off)[0],
                         dit.forward({io["a.x"]}, {717}, {io["a.context"]}, 36, nullptr, {}, {}, nullptr, &on)[0]));
}

// vace_encode_frames / vace_encode_masks / vace_latent on a clip with a
// per-frame mask (grey values on the rectangles' borders) and two
// references; the mask's temporal sampling tables.
TEST(Vace, ContextOfFramesMaskAndReferences) {
  KINO_REQUIRE_FIXTURES();
  const std::string file = "vace_encode_io.safetensors";
  const Io io(file);
  for (const int64_t T : {5, 9, 13, 17, 21, 81}) {
    const at::Tensor ref = io[concat("mask_time_index.T", T)];
    EXPECT_EQ(vace_mask_time_index(T), std::vector<int64_t>(ref.data_ptr<int64_t>(), ref.data_ptr<int64_t>() + ref.numel())) << T;
  }
  const at::Tensor mask = io["mask"][0];
  EXPECT_TRUE(at::equal(vace_mask_latent(mask, 2), io["m0"]));
  EXPECT_TRUE(at::equal(vace_mask_latent(mask, 0), io["m0_norefs"]));
  EXPECT_TRUE(at::equal(video_of(io["frames_u8"]), io["frames"]));
  const ModelManifest m = load_manifest(manifest());
  const WanGenerator g(m, at::kCPU, at::kFloat);
  ASSERT_TRUE(g.takes_vace());
  const std::vector<at::Tensor> refs = {io["refs"][0].squeeze(1), io["refs"][1].squeeze(1)};
  const at::Tensor z = g.vace_context(io["frames"], mask, refs);
  EXPECT_PARITY_VACE(z, io["z"], file, "z");
  EXPECT_PARITY_VACE(z.slice(0, 0, 32), io["z0"], file, "z0");
  EXPECT_PARITY_VACE(z.slice(0, 0, 16).slice(1, 2), io["inactive_latent"], file, "inactive_latent");
  EXPECT_PARITY_VACE(z.slice(0, 16, 32).slice(1, 2), io["reactive_latent"], file, "reactive_latent");
  EXPECT_PARITY_VACE(z.slice(0, 0, 16).slice(1, 0, 2), io["ref_latents"], file, "ref_latents");
  EXPECT_EQ(z.slice(0, 16).slice(1, 0, 2).abs().max().item<float>(), 0.0f) << "references: zero reactive half and mask";
  EXPECT_PARITY_VACE(g.vace_context(io["frames"], mask, {}).slice(0, 0, 32), io["z0_norefs"], file, "z0_norefs");
}

// The video processor's frame choice (keep_last) and output size: 11
// frames at 16 fps give 9, frames 0 1 2 3 5 6 7 9 10; the size from the
// video within the area, capped by seq_len.
TEST(Vace, SourceVideoFramesAndSize) {
  std::vector<std::array<float, 2>> times;
  for (int i = 0; i < 11; ++i) times.push_back({static_cast<float>(i / 16.0), static_cast<float>((i + 1) / 16.0)});
  const VaceSource s = vace_source(11, 64, 48, 64 * 48);
  EXPECT_EQ(s.frames, 9);
  EXPECT_EQ(s.width, 64);
  EXPECT_EQ(s.height, 48);
  EXPECT_EQ(vace_frame_ids(times, s.frames), (std::vector<int64_t>{0, 1, 2, 3, 5, 6, 7, 9, 10}));
  // 81 frames of 832x480 at the official 480P area: all of them, unchanged.
  const VaceSource real = vace_source(81, 832, 480, 832 * 480);
  EXPECT_EQ(real.frames, 81);
  EXPECT_EQ(real.width, 832);
  EXPECT_EQ(real.height, 480);
  // 1920x1080 into 832x480's area: 30 x 52 tokens (round(sqrt(1560 * 9 / 16)), 1560 / 30).
  const VaceSource hd = vace_source(200, 1920, 1080, 832 * 480);
  EXPECT_EQ(hd.frames, 81);  // seq_len 32760 / 1560 tokens = 21 latent frames
  EXPECT_EQ(hd.width, 832);
  EXPECT_EQ(hd.height, 480);
  // Reference images: fitted (bilinear) onto white at the frame's size.
  const at::Tensor r = vace_reference(at::zeros({3, 40, 40}), 48, 64);
  EXPECT_EQ(r.sizes(), (std::vector<int64_t>{3, 48, 64}));
  EXPECT_EQ(r.slice(2, 0, 8).min().item<float>(), 1.0f);
  EXPECT_EQ(r.slice(2, 8, 56).abs().max().item<float>(), 0.0f);
}

namespace {

// One generate() case: prepare_source's tensors, the VACE context, the
// texts, the noise from the seed, every step, the video.
void expect_case(const WanGenerator& g, const ModelManifest& m, const Io& io, const std::string& c) {
  const std::string file = "vace_e2e_io.safetensors", p = c + ".";
  const nlohmann::json args = nlohmann::json::parse(io.meta.at(c));
  const int64_t frames = args["frame_num"], W = args["size"][0], H = args["size"][1];
  // prepare_source: the frames the processor reads, the mask's channel, the references.
  at::Tensor video = at::zeros({3, frames, H, W}), mask = at::ones({frames, H, W});
  if (io.has(p + "src_video_u8")) {
    const at::Tensor u8 = io[p + "src_video_u8"];
    std::vector<std::array<float, 2>> times;
    for (int64_t i = 0; i < u8.size(0); ++i) times.push_back({static_cast<float>(i / 16.0), static_cast<float>((i + 1) / 16.0)});
    const VaceSource s = vace_source(u8.size(0), u8.size(2), u8.size(1), W * H);
    const at::Tensor ids = at::tensor(vace_frame_ids(times, s.frames), at::kLong);
    video = vace_resize_crop(u8.index_select(0, ids), s.height, s.width);
    if (io.has(p + "src_mask_u8")) mask = ((vace_resize_crop(io[p + "src_mask_u8"].index_select(0, ids), s.height, s.width)[0] + 1) / 2).clamp(0, 1);
  }
  EXPECT_TRUE(at::equal(video, io[p + "src_video"])) << c;
  EXPECT_TRUE(at::equal(mask, io[p + "src_mask"][0])) << c;
  std::vector<at::Tensor> refs;
  for (int j = 0; io.has(concat(p, "ref", j, "_u8")); ++j) refs.push_back(vace_reference(image_tensor(io[concat(p, "ref", j, "_u8")]), H, W));
  for (size_t j = 0; j < refs.size(); ++j)
    EXPECT_PARITY_VACE(refs[j], io[p + "refs_prepared"][static_cast<int64_t>(j)].squeeze(1), file, p + "refs_prepared");
  const at::Tensor z = g.vace_context(video, mask, refs);
  EXPECT_PARITY_VACE(z, io[p + "vace_context"], file, p + "vace_context");
  const std::string negative = args["n_prompt"].get<std::string>().empty() ? m.defaults.negative_prompt : args["n_prompt"].get<std::string>();
  EXPECT_PARITY_VACE(g.encode_text(args["prompt"]), io[p + "context_cond"], file, p + "context_cond");
  EXPECT_PARITY_VACE(g.encode_text(negative), io[p + "context_uncond"], file, p + "context_uncond");
  // The noise has the latent's shape, reference frames included.
  std::vector<int64_t> shape = g.latent_shape(frames, H, W);
  shape[1] += static_cast<int64_t>(refs.size());
  EXPECT_TRUE(at::equal(seeded_noise(args["seed"].get<uint64_t>(), shape), io[p + "noise"])) << c;
  const SamplerKind kind = args["sample_solver"] == "unipc" ? SamplerKind::UniPC : SamplerKind::DPMpp;
  const int64_t steps = args["sampling_steps"];
  const double shift = args["shift"];
  EXPECT_TRUE(at::equal(at::tensor(make_schedule(kind, steps, shift).timesteps, at::kLong), io[p + "timesteps"])) << c;
  SampleInputs vace;
  vace.vace_context = io[p + "vace_context"];
  vace.context_scale = args["context_scale"].get<double>();
  int64_t seen = 0;
  const at::Tensor latent = g.sample(
      io[p + "noise"], io[p + "context_cond"], io[p + "context_uncond"], kind, steps, shift, args["guide_scale"].get<double>(),
      [&](const WanGenerator::Step& s) {
        ++seen;
        EXPECT_PARITY_VACE(s.cond, io[p + "noise_pred_cond"][s.index], file, p + "noise_pred_cond");
        EXPECT_PARITY_VACE(s.uncond, io[p + "noise_pred_uncond"][s.index], file, p + "noise_pred_uncond");
        EXPECT_PARITY_VACE(s.guided, io[p + "noise_pred"][s.index], file, p + "noise_pred");
        EXPECT_PARITY_VACE(s.latent, io[p + "latents"][s.index], file, p + "latents");
      },
      vace);
  EXPECT_EQ(seen, steps);
  const at::Tensor out = g.decode(latent.slice(1, static_cast<int64_t>(refs.size())));
  EXPECT_PARITY_VACE(out, io[p + "video"], file, p + "video");
  EXPECT_LE((to_u8(out) - io[p + "video_u8"].to(at::kInt)).abs().max().item<int>(), 1) << c;
}

}  // namespace

// WanVace.generate() in its four modes: reference-to-video (two references
// of other sizes, no video), video-to-video under a control video (11
// frames read as 9, dpm++), extension (frames 0-4 kept) and inpainting
// (a rectangle with a grey border, context_scale 0.6, shift 8, guide 4).
TEST(Vace, GenerateMatchesEveryStepInEveryMode) {
  KINO_REQUIRE_FIXTURES();
  const ModelManifest m = load_manifest(manifest());
  const WanGenerator g(m, at::kCPU, at::kFloat);
  const Io io("vace_e2e_io.safetensors");
  for (const char* c : {"a_ref2v", "b_v2v", "c_extension", "d_inpaint"}) expect_case(g, m, io, c);
}

namespace {

// uint8 [T, H, W, 3] frames written as PNGs `pattern` (printf, from 0) by
// the ffmpeg tool.
void write_frames(const at::Tensor& u8, const std::string& dir, const std::string& pattern) {
  const std::string raw = dir + "/frames.rgb";
  {
    std::ofstream out(raw, std::ios::binary);
    const at::Tensor c = u8.contiguous();
    out.write(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<std::streamsize>(c.numel()));
  }
  const auto r = test::run_command(concat("ffmpeg -v error -y -f rawvideo -pix_fmt rgb24 -s ", u8.size(2), "x", u8.size(1), " -i ",
                                          test::shell_quote(raw), " -start_number 0 ", test::shell_quote(dir + "/" + pattern)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::remove(raw);
}

void expect_frames(const std::string& dir, const at::Tensor& ref_u8) {
  for (int64_t f = 0; f < ref_u8.size(0); ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "/o_%04d.png", static_cast<int>(f));
    const Image got = read_image(dir + name);
    ASSERT_EQ(got.width, ref_u8.size(2));
    ASSERT_EQ(got.height, ref_u8.size(1));
    const at::Tensor g = at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {got.height, got.width, 3}, at::kByte).to(at::kInt);
    EXPECT_LE((g - ref_u8[f].to(at::kInt)).abs().max().item<int>(), 1) << dir << " frame " << f;
  }
}

}  // namespace

// The CLI reproduces the official frames: references from PNGs of other
// sizes; an extension from a PNG sequence and its mask sequence; the
// inpainting case from lossless MP4s (the video's own frame rate).
TEST(Vace, CliReproducesTheOfficialFrames) {
  KINO_REQUIRE_FIXTURES();
  const Io io("vace_e2e_io.safetensors");
  auto run = [&](const std::string& c, const std::string& inputs, const test::TempDir& dir) {
    const nlohmann::json args = nlohmann::json::parse(io.meta.at(c));
    std::string cmd = concat("generate ", test::shell_quote(args["prompt"].get<std::string>()), " --model ", test::shell_quote(manifest()),
                             " --seed ", args["seed"].get<uint64_t>(), " --steps ", args["sampling_steps"].get<int64_t>(), " --shift ",
                             args["shift"].get<double>(), " --cfg ", args["guide_scale"].get<double>(), " --sampler ",
                             args["sample_solver"] == "unipc" ? "unipc" : "dpm++", " --threads 1 ", inputs);
    if (args["context_scale"].get<double>() != 1.0) cmd += concat(" --context-scale ", args["context_scale"].get<double>());
    if (!args["n_prompt"].get<std::string>().empty()) cmd += " --negative " + test::shell_quote(args["n_prompt"].get<std::string>());
    return test::kino_cli(cmd + " -o " + test::shell_quote(dir / "o_%04d.png"));
  };
  {
    test::TempDir dir;
    std::string refs;
    for (int j = 0; j < 2; ++j) {
      const std::string png = dir / concat("ref", j, ".png");
      write_frames(io[concat("a_ref2v.ref", j, "_u8")].unsqueeze(0), dir.path, concat("ref", j, ".png"));
      refs += " --reference " + test::shell_quote(png);
    }
    const auto r = run("a_ref2v", refs + " --size 64x48 --frames 9", dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_frames(dir.path, io["a_ref2v.video_u8"]);
  }
  {
    test::TempDir dir;
    write_frames(io["c_extension.src_video_u8"], dir.path, "v_%03d.png");
    write_frames(io["c_extension.src_mask_u8"], dir.path, "m_%03d.png");
    const auto r = run("c_extension", " --video " + test::shell_quote(dir / "v_%03d.png") + " --mask " + test::shell_quote(dir / "m_%03d.png"), dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_frames(dir.path, io["c_extension.video_u8"]);
  }
  {
    test::TempDir dir;
    for (const char* part : {"video", "mask"}) {
      write_frames(io[concat("d_inpaint.src_", part, "_u8")], dir.path, concat(part, "_%02d.png"));
      const auto enc = test::run_command(concat("ffmpeg -v error -y -framerate 16 -i ", test::shell_quote(dir / concat(part, "_%02d.png")),
                                                " -c:v libx264rgb -qp 0 ", test::shell_quote(dir / concat(part, ".mp4"))));
      ASSERT_EQ(enc.exit_code, 0) << enc.err;
      for (int64_t f = 0; f < io["d_inpaint.src_video_u8"].size(0); ++f) std::filesystem::remove(dir / concat(part, "_", f < 10 ? "0" : "", f, ".png"));
    }
    const auto r = run("d_inpaint", " --video " + test::shell_quote(dir / "video.mp4") + " --mask " + test::shell_quote(dir / "mask.mp4"), dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_frames(dir.path, io["d_inpaint.video_u8"]);
  }
}

// Bad VACE inputs get one line naming the file and what is wrong, before
// the model loads, and nothing is written.
TEST(Vace, BadInputsAreNamed) {
  KINO_REQUIRE_FIXTURES();
  const Io io("vace_e2e_io.safetensors");
  test::TempDir dir;
  write_frames(io["c_extension.src_video_u8"], dir.path, "v_%03d.png");
  write_frames(io["c_extension.src_mask_u8"].slice(0, 0, 5), dir.path, "short_%03d.png");
  write_frames(io["a_ref2v.ref1_u8"].unsqueeze(0).expand({9, 50, 100, 3}), dir.path, "wide_%03d.png");
  std::ofstream(dir / "not_video.mp4") << "this is not a video";
  std::ofstream(dir / "not_image.png") << "this is not an image";
  const std::string base = "generate x --model " + test::shell_quote(manifest()) + " -o " + test::shell_quote(dir / "out.mp4");
  auto expect_refused = [&](const std::string& args, const std::string& message) {
    const auto r = test::kino_cli(base + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1u) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out.mp4"));
  };
  const std::string video = " --video " + test::shell_quote(dir / "v_%03d.png");
  expect_refused("--video " + test::shell_quote(dir / "not_video.mp4"), "not_video.mp4");
  expect_refused("--video " + test::shell_quote(dir / "missing_%03d.png"), "no frame of this image sequence");
  expect_refused(video + " --mask " + test::shell_quote(dir / "short_%03d.png"), "the mask has 5 frames");
  expect_refused(video + " --mask " + test::shell_quote(dir / "wide_%03d.png"), "the mask is 100x50");
  expect_refused("--mask " + test::shell_quote(dir / "wide_%03d.png"), "--mask needs --video");
  expect_refused("--reference " + test::shell_quote(dir / "not_image.png"), "not_image.png");
  // Models without VACE blocks take none of these.
  const std::string t2v = "generate x --model " + test::shell_quote(test::fixture_manifest_path()) + " -o " + test::shell_quote(dir / "out.mp4");
  const auto r = test::kino_cli(t2v + " --reference " + test::shell_quote(dir / "wide_000.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("takes no reference images"), std::string::npos) << r.err;
}

// SDEdit video-to-video on a text-to-video model: strength 1 is
// text-to-video from the same seed (the video unused), strength 0 the
// video's VAE round trip (no step runs), 0.5 runs the last half of the
// steps from the video's noised latent.
TEST(VideoToVideo, StrengthOneIsTextToVideoAndZeroTheVaeRoundTrip) {
  KINO_REQUIRE_FIXTURES();
  const Io io("vace_e2e_io.safetensors");
  test::TempDir dir;
  write_frames(io["b_v2v.src_video_u8"], dir.path, "v_%03d.png");
  const ModelManifest m = load_manifest(test::fixture_manifest_path());
  const ModelDescription d = describe_model(m);
  const WanGenerator g(m, at::kCPU, at::kFloat);
  auto settings = [&](std::optional<double> strength) {
    GenerationRequest r;
    r.prompt = "a glass sphere rolling over a marble floor";
    r.seed = 7;
    if (strength) {
      r.video = dir / "v_%03d.png";
      r.strength = strength;
    }
    return resolve_request(r, m.defaults, d, false);
  };
  auto run = [&](const GenerationSettings& s, std::vector<int64_t>& steps) {
    return g.sample(seeded_noise(s.seed, g.latent_shape(s)), g.encode(s), s, [&](const StepDone& done) { steps.push_back(done.step); });
  };
  std::vector<int64_t> t2v_steps, one_steps, zero_steps, half_steps;
  const GenerationSettings t2v = settings(std::nullopt), one = settings(1.0), zero = settings(0.0), half = settings(0.5);
  EXPECT_EQ(one.frames, 9);  // the video's 11 frames read as 9
  const at::Tensor reference = run(t2v, t2v_steps);
  EXPECT_TRUE(at::equal(run(one, one_steps), reference));
  EXPECT_EQ(one_steps, t2v_steps);
  // The frames VaceVideoProcessor reads, encoded: what strength 0 returns.
  const at::Tensor u8 = io["b_v2v.src_video_u8"].index_select(0, at::tensor(std::vector<int64_t>{0, 1, 2, 3, 5, 6, 7, 9, 10}, at::kLong));
  EXPECT_TRUE(at::equal(run(zero, zero_steps), g.encode_image(vace_resize_crop(u8, 48, 64))));
  EXPECT_TRUE(zero_steps.empty());
  const at::Tensor h = run(half, half_steps);
  EXPECT_EQ(half_steps, (std::vector<int64_t>{3, 4}));
  EXPECT_GT(test::rel_error(h, reference), 0.01);
  // The CLI runs it; --strength without --video, and a video without
  // --strength on a text-to-video model, are refused.
  const std::string model = " --model " + test::shell_quote(test::fixture_manifest_path());
  const auto ok = test::kino_cli("generate x" + model + " --video " + test::shell_quote(dir / "v_%03d.png") + " --strength 0.5 -q -o " +
                                 test::shell_quote(dir / "o.mp4"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const auto no_video = test::kino_cli("generate x" + model + " --strength 0.5 -o " + test::shell_quote(dir / "n.mp4"));
  EXPECT_EQ(no_video.exit_code, 1);
  EXPECT_NE(no_video.err.find("--strength needs --video"), std::string::npos) << no_video.err;
  const auto no_strength = test::kino_cli("generate x" + model + " --video " + test::shell_quote(dir / "v_%03d.png") + " -o " +
                                          test::shell_quote(dir / "n.mp4"));
  EXPECT_EQ(no_strength.exit_code, 1);
  EXPECT_NE(no_strength.err.find("give --strength"), std::string::npos) << no_strength.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "n.mp4"));
}

namespace {

namespace fs = std::filesystem;

}  // namespace

// The VACE releases users download are models: the official folder (a
// VaceWanModel config.json, whose model_type the releases leave at "t2v")
// and a Diffusers WanVACEPipeline (proj_in / proj_out); the official one
// runs a_ref2v to the official frames.
TEST(VaceFolders, OfficialAndDiffusersReleasesAreVaceModels) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  const fs::path official = fs::path(dir.path) / "Wan2.1-VACE-1.3B";
  test::write_json(official / "config.json", {{"_class_name", "VaceWanModel"}, {"model_type", "t2v"}, {"num_heads", 4}, {"text_len", 32},
                                        {"vace_layers", {0, 1, 3}}, {"vace_in_dim", 96}});
  test::link(test::fixture("vace_dit_weights.safetensors", kSet), official / "diffusion_pytorch_model.safetensors");
  test::link(test::layouts_path("official/models_t5_umt5-xxl-enc-f32.pth"), official / "models_t5_umt5-xxl-enc-bf16.pth");
  test::link(test::layouts_path("official/Wan2.1_VAE.pth"), official / "Wan2.1_VAE.pth");
  test::link(test::layouts_path("official/google"), official / "google");
  const ModelManifest m = load_manifest(official.string());
  EXPECT_EQ(m.family + " " + m.task, "wan2.1 vace");
  EXPECT_EQ(m.defaults.shift, 16.0);
  EXPECT_EQ(m.defaults.steps, 50);
  EXPECT_EQ(m.transformer_config["vace_layers"], nlohmann::json({0, 1, 3}));

  const fs::path dif = fs::path(dir.path) / "Wan2.1-VACE-1.3B-diffusers";
  test::write_json(dif / "model_index.json", {{"_class_name", "WanVACEPipeline"}, {"transformer", {"diffusers", "WanVACETransformer3DModel"}}});
  test::write_json(dif / "transformer" / "config.json", {{"num_attention_heads", 4}, {"vace_layers", {0, 1, 3}}, {"vace_in_channels", 96}});
  test::write_diffusers_dit(test::fixture("vace_dit_weights.safetensors", kSet), (dif / "transformer" / "diffusion_pytorch_model.safetensors").string());
  for (const char* part : {"text_encoder", "tokenizer", "vae"}) test::link(test::layouts_path(std::string("diffusers/") + part), dif / part);
  const ModelManifest d = load_manifest(dif.string());
  EXPECT_EQ(d.task, "vace");
  EXPECT_EQ(weight_layout(d, "transformer"), "diffusers");
  EXPECT_EQ(d.transformer_config["vace_in_dim"], 96);
  // Every tensor of the Diffusers file reads back as the official one.
  Weights w(index_weights("wan2.1", "transformer", (dif / "transformer" / "diffusion_pytorch_model.safetensors").string()));
  const auto reference = test::load_tensors(test::fixture("vace_dit_weights.safetensors", kSet));
  for (const auto& [name, t] : reference) EXPECT_TRUE(at::equal(w.take(name), t)) << name;
  EXPECT_NO_THROW(w.finish());

  const Io io("vace_e2e_io.safetensors");
  std::string refs;
  for (int j = 0; j < 2; ++j) {
    write_frames(io[concat("a_ref2v.ref", j, "_u8")].unsqueeze(0), dir.path, concat("ref", j, ".png"));
    refs += " --reference " + test::shell_quote(dir / concat("ref", j, ".png"));
  }
  const auto r = test::kino_cli(concat("generate ", test::shell_quote("a red ball and a green toy sitting on a wooden table"), " --model ",
                                       test::shell_quote(official.string()), refs,
                                       " --seed 42 --steps 4 --size 64x48 --frames 9 --threads 1 -o ", test::shell_quote(dir / "o_%04d.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_frames(dir.path, io["a_ref2v.video_u8"]);
}

// Extension: --keep-frames builds the official "firstclip" input (the
// video's last frames kept, grey frames to generate) and reproduces the
// fixture's extension case; `kino extend` writes the frames before the kept
// ones, then the window; an image-to-video model continues from the last
// frame; a text-to-video model is refused.
TEST(Vace, ExtendKeepsTheLastFramesAndWritesTheWholeClip) {
  KINO_REQUIRE_FIXTURES();
  const Io io("vace_e2e_io.safetensors");
  const nlohmann::json args = nlohmann::json::parse(io.meta.at("c_extension"));
  test::TempDir dir;
  // Two frames of another clip, then the fixture's five kept frames.
  const at::Tensor lead = io["b_v2v.src_video_u8"].slice(0, 0, 2);
  write_frames(at::cat({lead, io["c_extension.src_video_u8"].slice(0, 0, 5)}), dir.path, "in_%03d.png");
  const std::string common = concat(" --model ", test::shell_quote(manifest()), " --seed ", args["seed"].get<uint64_t>(),
                                    " --steps 4 --frames 9 --keep-frames 5 --threads 1");
  const std::string prompt = test::shell_quote(args["prompt"].get<std::string>());
  const auto r = test::kino_cli("extend " + test::shell_quote(dir / "in_%03d.png") + " " + prompt + common + " -o " +
                                test::shell_quote(dir / "o_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("keeping the last 5 frames"), std::string::npos) << r.err;
  // The two frames before the kept ones, as they were; then the official extension.
  for (int64_t f = 0; f < 2; ++f) {
    const Image got = read_image(dir / concat("o_000", f, ".png"));
    EXPECT_TRUE(at::equal(at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {48, 64, 3}, at::kByte), lead[f])) << f;
  }
  const at::Tensor ref = io["c_extension.video_u8"];
  for (int64_t f = 0; f < ref.size(0); ++f) {
    const Image got = read_image(dir / concat(f + 2 < 10 ? "o_000" : "o_00", f + 2, ".png"));
    const at::Tensor g = at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {48, 64, 3}, at::kByte).to(at::kInt);
    EXPECT_LE((g - ref[f].to(at::kInt)).abs().max().item<int>(), 1) << "frame " << f;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "o_0011.png"));
  // An image-to-video model continues from the last frame.
  const std::string ti2v = std::string(KINO_TEST_DATA_DIR) + "/wan22-ti2v-tiny.kino.json";
  const auto image = test::kino_cli("extend " + test::shell_quote(dir / "in_%03d.png") + " x --model " + test::shell_quote(ti2v) +
                                    " --frames 5 --steps 2 -o " + test::shell_quote(dir / "i.mp4"));
  ASSERT_EQ(image.exit_code, 0) << image.err;
  EXPECT_NE(image.err.find("starting from the last frame"), std::string::npos) << image.err;
  EXPECT_EQ(index_video(dir / "i.mp4", 16).times.size(), 6u + 5u);  // 6 frames before the last, 5 from it
  const auto t2v = test::kino_cli("extend " + test::shell_quote(dir / "in_%03d.png") + " x --model " +
                                  test::shell_quote(test::fixture_manifest_path()) + " -o " + test::shell_quote(dir / "t.mp4"));
  EXPECT_EQ(t2v.exit_code, 1);
  EXPECT_NE(t2v.err.find("can neither keep frames"), std::string::npos) << t2v.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "t.mp4"));
}

// Batch lines name their references and source videos relative to the
// prompt file, as they name images; nothing outside its folder.
TEST(Vace, BatchLinesTakeReferencesAndVideos) {
  KINO_REQUIRE_FIXTURES();
  const Io io("vace_e2e_io.safetensors");
  test::TempDir dir;
  write_frames(io["a_ref2v.ref0_u8"].unsqueeze(0), dir.path, "ref0.png");
  write_frames(io["b_v2v.src_video_u8"], dir.path, "v_%03d.png");
  std::ofstream(dir / "p.jsonl") << R"({"prompt": "a red ball", "references": ["ref0.png"], "steps": 2})" "\n"
                                 << R"({"prompt": "a glass sphere", "video": "v_%03d.png", "context_scale": 0.5, "steps": 2})" "\n"
                                 << R"({"prompt": "outside", "references": ["../ref0.png"], "steps": 2})" "\n";
  const auto r = test::kino_cli("batch " + test::shell_quote(dir / "p.jsonl") + " --model " + test::shell_quote(manifest()) + " -d " +
                                test::shell_quote(dir / "out") + " --name '{index}.mp4'");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // the third line fails alone
  EXPECT_NE(r.err.find("must be a file name relative to the folder"), std::string::npos) << r.err;
  EXPECT_EQ(test::count_files(dir / "out"), 2u);
  const nlohmann::json second = read_provenance(dir / "out/0001.mp4");
  EXPECT_EQ(second["context_scale"], 0.5);
  EXPECT_EQ(second["frames"], 9);  // the video's 11 frames read as 9
}

// A ComfyUI single file (official names under model.diffusion_model.) is
// the same transformer; without a config the VACE blocks spread evenly over
// the main ones (the 1.3B's 0, 2, ..., 28 and the 14B's 0, 5, ..., 35; ComfyUI
// counts them the same way), here [0, 1, 2], so the tiny model's [0, 1, 3]
// comes from a kino.json.
TEST(VaceFolders, ComfyUiFilesLoadAndSpreadTheVaceBlocks) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> renamed;
  for (const auto& [name, t] : test::load_tensors(test::fixture("vace_dit_weights.safetensors", kSet)))
    renamed.emplace_back("model.diffusion_model." + name, t);
  test::write_tensors(dir / "wan2.1_vace_tiny.safetensors", renamed);
  nlohmann::json spread = {{"num_heads", 4}};
  const WeightIndex index = index_weights("wan2.1", "transformer", dir / "wan2.1_vace_tiny.safetensors", spread);
  EXPECT_EQ(index.layout, "comfyui");
  EXPECT_EQ(spread["vace_layers"], nlohmann::json({0, 1, 2}));
  EXPECT_EQ(spread["vace_in_dim"], 96);
  nlohmann::json given = {{"num_heads", 4}, {"vace_layers", {0, 1, 3}}};
  index_weights("wan2.1", "transformer", dir / "wan2.1_vace_tiny.safetensors", given);
  EXPECT_EQ(given["vace_layers"], nlohmann::json({0, 1, 3}));
}
