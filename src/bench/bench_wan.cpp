// kino-bench: the whole text-to-video pipeline (encode, denoise, decode, mux)
// on random weights with a real model's shapes, so no download is needed.
// Prints a table and writes a JSON record (scripts/bench-gpu.sh).
#include <CLI/CLI.hpp>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "kino/error.h"
#include "kino/manifest.h"
#include "kino/pipeline.h"
#include "kino/video_writer.h"
#include "kino/wan_t2v.h"

namespace {

// Multiply-adds of one transformer pass, counted as 2 FLOPs each: per block,
// self-attention projections 4·L·d² and scores/values 2·L²·d, cross-attention
// q/o 2·L·d², k/v 2·T·d² and scores/values 2·L·T·d, feed-forward 2·L·d·f.
// Element-wise work (norms, RoPE, modulation) is left out.
double transformer_flops(const kino::WanDiTConfig& c, int64_t tokens) {
  const double L = static_cast<double>(tokens), d = static_cast<double>(c.dim), T = static_cast<double>(c.text_len),
               f = static_cast<double>(c.ffn_dim);
  const double per_block = 4 * L * d * d + 2 * L * L * d + 2 * L * d * d + 2 * T * d * d + 2 * L * T * d + 2 * L * d * f;
  return 2 * per_block * static_cast<double>(c.num_layers);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino-bench: the Wan pipeline on random weights of a real model's shapes"};
  std::string model = KINO_SOURCE_DIR "/bench/models/wan2.1-t2v-1.3b.kino.json";
  std::string device = torch::cuda::is_available() ? "cuda" : "cpu", dtype = "bfloat16", json_path, video_path, commit;
  std::string device_name;
  int64_t width = 832, height = 480, frames = 81, steps = 50, warmup_steps = 2;
  double cfg = 5.0, peak_tflops = 790;
  app.add_option("--model", model, "manifest with the architecture (weights files are not read)")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.add_option("--dtype", dtype, "float32, bfloat16 or float16")->capture_default_str();
  app.add_option("--width", width)->capture_default_str();
  app.add_option("--height", height)->capture_default_str();
  app.add_option("--frames", frames)->capture_default_str();
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--cfg", cfg)->capture_default_str();
  app.add_option("--warmup-steps", warmup_steps, "a short untimed generation first (0: none)")->capture_default_str();
  app.add_option("--peak-tflops", peak_tflops, "the device's bf16 matrix rate, for the fraction")->capture_default_str();
  app.add_option("--json", json_path, "write the record here");
  app.add_option("--video", video_path, "keep the MP4 here (default: a temporary file)");
  app.add_option("--commit", commit, "kino commit for the record");
  app.add_option("--device-name", device_name, "device description for the record");
  CLI11_PARSE(app, argc, argv);

  try {
    kino::set_media_log_level(false);
    kino::ModelManifest m = kino::load_manifest(model, /*weights_required=*/false);
    auto t0 = std::chrono::steady_clock::now();
    kino::Pipeline pipeline(m, kino::RuntimeOptions{device, dtype, 0, true});
    const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    kino::GenerationRequest req;
    req.prompt = "a red fox running through snow at dawn";
    req.width = width;
    req.height = height;
    req.frames = frames;
    req.cfg = cfg;
    req.seed = 42;
    if (video_path.empty()) video_path = (std::filesystem::temp_directory_path() / "kino-bench.mp4").string();

    if (warmup_steps > 0) {
      req.steps = warmup_steps;
      pipeline.generate(pipeline.resolve(req, true));
    }
    req.steps = steps;
    const kino::GenerationSettings s = pipeline.resolve(req, true);
    kino::StageTimes tm;
    t0 = std::chrono::steady_clock::now();
    kino::Video video = pipeline.generate(s, {}, &tm);
    auto t1 = std::chrono::steady_clock::now();
    kino::write_video(video_path, video, {{"comment", "kino-bench, random weights"}});
    auto t2 = std::chrono::steady_clock::now();
    const double mux_s = std::chrono::duration<double>(t2 - t1).count();
    const double end_to_end_s = std::chrono::duration<double>(t2 - t0).count();

    const kino::WanDiTConfig dit = kino::dit_config(m);
    const kino::WanVAEConfig vae = kino::vae_config(m);
    const int64_t tokens = ((frames - 1) / vae.temporal_stride() + 1) / dit.patch_size[0] *
                           (height / (vae.spatial_stride() * dit.patch_size[1])) *
                           (width / (vae.spatial_stride() * dit.patch_size[2]));
    const double passes = static_cast<double>(steps) * (cfg != 1.0 ? 2 : 1);
    const double flops = transformer_flops(dit, tokens) * passes;
    const double tflops = flops / tm.denoise_s / 1e12;

    nlohmann::json r = {{"date", utc_now()},
                        {"device", device_name.empty() ? device : device_name},
                        {"model", m.name},
                        {"weights", "random"},
                        {"dtype", dtype},
                        {"width", width},
                        {"height", height},
                        {"frames", frames},
                        {"steps", steps},
                        {"cfg", cfg},
                        {"sampler", s.sampler},
                        {"tokens", tokens},
                        {"setup_s", setup_s},
                        {"text_encode_s", tm.text_s},
                        {"transformer_s", tm.denoise_s},
                        {"s_per_step", tm.denoise_s / static_cast<double>(steps)},
                        {"vae_decode_s", tm.decode_s},
                        {"mux_s", mux_s},
                        {"end_to_end_s", end_to_end_s},
                        {"transformer_flops", flops},
                        {"transformer_tflops", tflops},
                        {"fraction_of_peak", tflops / peak_tflops},
                        {"floor_s", flops / (peak_tflops * 1e12)},
                        {"ratio_to_floor", tm.denoise_s / (flops / (peak_tflops * 1e12))},
                        {"kino_commit", commit}};
    std::printf("%-22s %s\n", "model", m.name.c_str());
    std::printf("%-22s %lldx%lldx%lld, %lld steps, cfg %g, %s on %s\n", "run", static_cast<long long>(width),
                static_cast<long long>(height), static_cast<long long>(frames), static_cast<long long>(steps), cfg,
                dtype.c_str(), device.c_str());
    for (const char* k : {"text_encode_s", "transformer_s", "s_per_step", "vae_decode_s", "mux_s", "end_to_end_s",
                          "transformer_tflops", "fraction_of_peak", "floor_s", "ratio_to_floor"})
      std::printf("%-22s %.3f\n", k, r[k].get<double>());
    if (!json_path.empty()) {
      std::FILE* f = std::fopen(json_path.c_str(), "w");
      if (!f) throw kino::Error(kino::concat(json_path, ": cannot write"));
      std::fprintf(f, "%s\n", r.dump(2).c_str());
      std::fclose(f);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kino-bench: error: %s\n", e.what());
    return 1;
  }
}
