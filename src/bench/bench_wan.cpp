// kino-bench: the whole text-to-video pipeline (encode, denoise, decode, mux)
// on random weights with a real model's shapes, so no download is needed.
// Prints a table and writes a JSON record (scripts/bench-gpu.sh). Also times
// the attention back ends at the model's shape (--attention-bench) and writes
// a per-kernel profile of one denoising step (--profile, libtorch 2.x).
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <torch/cuda.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#define KINO_HAS_KINETO 1
#endif

#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "adapters/lora_merge.h"
#include "adapters/lora_plan.h"
#include "kino/error.h"
#include "kernels/fused_ops.h"
#include "kino/manifest.h"
#include "nn/nn.h"
#include "kino/pipeline.h"
#include "kino/runner.h"
#include "kino/video_writer.h"
#include "loading/tensor_file.h"
#include "util/sha256.h"
#include "wan/dit.h"
#include "wan/generator.h"

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

using Json = nlohmann::json;

void synchronize(const std::string& device) {
  if (device.rfind("cuda", 0) == 0) torch::cuda::synchronize();
}

// Self-attention alone at the transformer's shape ([2, heads, L, head_dim],
// the two CFG passes batched), with each fused back end in turn: seconds per
// call and TFLOP/s (4·B·H·L²·D FLOPs). The math back end would materialise
// the [L, L] scores and is left out.
Json attention_bench(const kino::WanDiTConfig& c, int64_t tokens, const std::string& device, at::ScalarType dtype) {
  const int64_t B = 2, H = c.num_heads, D = c.dim / c.num_heads;
  const at::TensorOptions o = at::TensorOptions().device(device).dtype(dtype);
  // Strided like the transformer's q/k/v: [B, L, H, D] viewed as [B, H, L, D].
  const at::Tensor q = at::randn({B, tokens, H, D}, o).transpose(1, 2), k = at::randn_like(q), v = at::randn_like(q);
  const double flops = 4.0 * B * H * static_cast<double>(tokens) * tokens * D;
  Json out = Json::array();
  std::printf("\nattention [%lld, %lld, %lld, %lld] %s\n", static_cast<long long>(B), static_cast<long long>(H),
              static_cast<long long>(tokens), static_cast<long long>(D), c10::toString(dtype));
  for (const char* name : {"flash", "cudnn", "efficient"}) {
    Json r = {{"backend", name}};
    try {
      kino::nn::select_attention_backend(name);
      const double scale = 1.0 / std::sqrt(static_cast<double>(D));
      for (int i = 0; i < 2; ++i) kino::nn::attention(q, k, v, at::Tensor(), scale);
      synchronize(device);
      const int iters = 10;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) kino::nn::attention(q, k, v, at::Tensor(), scale);
      synchronize(device);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
      r["s_per_call"] = s;
      r["tflops"] = flops / s / 1e12;
      std::printf("  %-10s %8.2f ms  %6.1f TFLOP/s\n", name, s * 1e3, flops / s / 1e12);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      r["error"] = what.substr(0, what.find('\n'));
      std::printf("  %-10s unavailable: %s\n", name, r["error"].get<std::string>().c_str());
    }
    out.push_back(r);
  }
  kino::nn::select_attention_backend("auto");
  return out;
}

#ifdef KINO_HAS_KINETO
// GPU kernel time of a Kineto trace, by kernel name and by kind (matrix
// products, attention, everything else), largest first.
Json summarize_trace(const std::string& path) {
  std::ifstream in(path);
  const Json trace = Json::parse(in);
  std::map<std::string, std::pair<double, int>> by_name;
  double total = 0;
  for (const Json& e : trace.at("traceEvents")) {
    if (e.value("ph", "") != "X" || e.value("cat", "") != "kernel") continue;
    const double us = e.value("dur", 0.0);
    auto& slot = by_name[e.value("name", "?")];
    slot.first += us;
    slot.second += 1;
    total += us;
  }
  auto kind_of = [](const std::string& n) {
    auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
    if (has("flash") || has("fmha") || has("attention") || has("Attention") || has("sdpa") || has("cudnn"))
      return "attention";
    if (has("gemm") || has("Gemm") || has("nvjet") || has("cutlass") || has("xmma") || has("sm90_")) return "matmul";
    return "element-wise and other";
  };
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::map<std::string, double> kinds;
  Json kernels = Json::array();
  for (const auto& [name, v] : rows) {
    kinds[kind_of(name)] += v.first;
    if (kernels.size() < 25)
      kernels.push_back({{"name", name.substr(0, 160)}, {"kind", kind_of(name)}, {"total_ms", v.first / 1e3}, {"calls", v.second}});
  }
  std::printf("\nGPU kernel time of one denoising step: %.1f ms\n", total / 1e3);
  for (const auto& [kind, us] : kinds) std::printf("  %-24s %8.1f ms  %5.1f%%\n", kind.c_str(), us / 1e3, 100 * us / total);
  for (const Json& k : kernels)
    std::printf("  %8.2f ms %5d  %-10s %.100s\n", k["total_ms"].get<double>(), k["calls"].get<int>(),
                k["kind"].get<std::string>().c_str(), k["name"].get<std::string>().c_str());
  Json kinds_json = Json::object();
  for (const auto& [kind, us] : kinds) kinds_json[kind] = {{"ms", us / 1e3}, {"fraction", us / total}};
  return {{"step_kernel_ms", total / 1e3}, {"by_kind", kinds_json}, {"top_kernels", kernels}, {"trace", path}};
}
#endif

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// LoRA merging at the transformer's shape: a rank-`rank` BF16 LoRA on every
// block Linear (the lightx2v distill LoRAs' layout), written to a temporary
// file and planned, then merged by the loader's own patch into random
// float32 weights one parameter at a time, as loading does. Times the plan
// (names, shapes, sha256) and the merge; the base weights' reading is not
// part of it.
Json lora_merge_bench(const kino::ModelManifest& model, int64_t rank) {
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));  // as kino generate's default
  const kino::WanDiTConfig c = kino::dit_config(model);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (int64_t b = 0; b < c.num_layers; ++b) {
    const std::string block = "blocks." + std::to_string(b) + ".";
    for (const char* attn : {"self_attn.", "cross_attn."})
      for (const char* l : {"q", "k", "v", "o"}) shapes[block + attn + l + ".weight"] = {c.dim, c.dim};
    shapes[block + "ffn.0.weight"] = {c.ffn_dim, c.dim};
    shapes[block + "ffn.2.weight"] = {c.dim, c.ffn_dim};
  }
  std::vector<at::Tensor> keep;
  std::vector<kino::TensorToWrite> tensors;
  const at::Tensor alpha = at::full({}, static_cast<double>(rank), at::kBFloat16);
  for (const auto& [name, shape] : shapes) {
    const std::string target = "diffusion_model." + name.substr(0, name.size() - 7);
    keep.push_back(at::randn({rank, shape[1]}, at::kBFloat16).div(std::sqrt(static_cast<double>(shape[1]))));
    tensors.push_back({target + ".lora_down.weight", kino::DType::BF16, keep.back().sizes().vec(), keep.back().data_ptr()});
    keep.push_back(at::randn({shape[0], rank}, at::kBFloat16).div(100));
    tensors.push_back({target + ".lora_up.weight", kino::DType::BF16, keep.back().sizes().vec(), keep.back().data_ptr()});
    tensors.push_back({target + ".alpha", kino::DType::BF16, {}, alpha.data_ptr()});
  }
  const std::string path = (std::filesystem::temp_directory_path() / "kino-bench-lora.safetensors").string();
  kino::write_safetensors(path, tensors);
  keep.clear();
  const double lora_gb = static_cast<double>(std::filesystem::file_size(path)) / 1e9;

  std::set<std::string> names;
  for (const auto& [name, shape] : shapes) names.insert(name);
  kino::ModelManifest m = model;
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = std::make_shared<kino::LoraPlan>(kino::plan_lora(
      {path, 1.0, ""}, "transformer", model.family, names, [&](const std::string& n) -> std::optional<std::vector<int64_t>> {
        auto it = shapes.find(n);
        if (it == shapes.end()) return std::nullopt;
        return it->second;
      }));
  plan->sha256 = kino::sha256_file(path);
  m.loras = {plan};
  const kino::WeightPatch patch = kino::lora_patch(m, "transformer");
  const double plan_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double merge_s = 0, weight_gb = 0;
  for (const auto& [name, shape] : shapes) {
    at::Tensor w = at::randn(shape, at::kFloat);
    const auto t1 = std::chrono::steady_clock::now();
    patch(name, w);
    merge_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    weight_gb += static_cast<double>(w.numel()) * 4 / 1e9;
  }
  std::filesystem::remove(path);
  std::printf("\nLoRA rank %lld on %zu Linears: file %.3f GB (bf16), plan %.2f s, merge %.2f s into %.2f GB of float32 weights "
              "(%.2f s per GB of LoRA), %d threads\n",
              static_cast<long long>(rank), shapes.size(), lora_gb, plan_s, merge_s, weight_gb, merge_s / lora_gb, at::get_num_threads());
  return {{"rank", rank},           {"linears", shapes.size()}, {"lora_gb", lora_gb}, {"plan_s", plan_s},
          {"merge_s", merge_s},     {"weights_gb", weight_gb},  {"merge_s_per_lora_gb", merge_s / lora_gb},
          {"threads", at::get_num_threads()}};
}

// The transformer alone at the model's shape: random weights (the blocks'
// matrices in `encoding`, e.g. Q4_K, or dense in `dtype`), one untimed
// pass, then `passes` timed ones on a random latent and context. Reports
// the resident weight bytes, seconds per pass and the peak RSS (CPU).
Json dit_step_bench(const kino::ModelManifest& model, const std::string& device, const std::string& dtype_name,
                    const std::string& encoding, bool offload, int64_t latent_frames, int64_t latent_h, int64_t latent_w,
                    int passes) {
  c10::InferenceMode inference;
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));  // as kino generate's default
  const at::ScalarType dtype = kino::parse_dtype(dtype_name);
  const kino::WanDiTConfig c = kino::dit_config(model);
  std::optional<kino::DType> packed;
  if (!encoding.empty()) {
    packed = kino::dtype_named(encoding);
    if (!packed || !kino::is_quantised(*packed)) throw kino::Error(kino::concat("--weights ", encoding, ": not a GGUF or fp8 encoding"));
  }
  const at::TensorOptions options = at::TensorOptions().device(device).dtype(dtype);
  const double rss_before = kino::peak_memory_mb();
  // --offload: made in host memory, the blocks then streamed (as the generator does).
  kino::Weights w = kino::Weights::random(0, offload ? options.device(at::kCPU) : options, packed);
  kino::WanDiT dit(c, w);
  dit.to(offload ? at::Device(at::kCPU) : at::Device(device), dtype);  // time embedding, modulation and norms in float32
  if (offload) dit.stream_blocks(at::Device(device));
  const at::Tensor x = at::randn({c.in_dim, latent_frames, latent_h, latent_w}, options.dtype(at::kFloat));
  const at::Tensor context = at::randn({c.text_len, c.text_dim}, options.dtype(at::kFloat));
  const int64_t tokens = c.tokens(latent_frames, latent_h, latent_w);
  dit.forward({x}, {500.0}, {context}, tokens);
  synchronize(device);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < passes; ++i) dit.forward({x}, {900.0 - 100.0 * i}, {context}, tokens);
  synchronize(device);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / passes;
  const std::string label = (encoding.empty() ? dtype_name : encoding) + (offload ? "+offload" : "");
  std::printf("%-10s weights %8.3f GB  %8.3f s per pass  peak RSS %9.1f MB (%lld tokens, %d threads)\n", label.c_str(),
              static_cast<double>(dit.weight_bytes()) / 1e9, s, kino::peak_memory_mb(), static_cast<long long>(tokens), at::get_num_threads());
  return {{"weights", label},          {"offload_blocks", offload},          {"weight_gb", static_cast<double>(dit.weight_bytes()) / 1e9},
          {"s_per_pass", s},           {"tokens", tokens},
          {"peak_rss_mb", kino::peak_memory_mb()}, {"rss_before_mb", rss_before},
          {"threads", at::get_num_threads()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino-bench: the Wan pipeline on random weights of a real model's shapes"};
  std::string model = KINO_SOURCE_DIR "/bench/models/wan2.1-t2v-1.3b.kino.json";
  std::string device = torch::cuda::is_available() ? "cuda" : "cpu", dtype = "bfloat16", json_path, video_path, commit;
  std::string device_name, attention = "auto", profile_path;
  bool attention_only = false, no_fused = false, i2v = false, keep_experts = false;
  int64_t lora_rank = 0;
  int dit_passes = 0;
  bool offload = false;
  std::string weights_encoding, cache;
  int64_t width = 832, height = 480, frames = 81, steps = 50, warmup_steps = 2, vae_tile = 0;
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
  app.add_option("--attention", attention, "fused attention back end: auto, flash, cudnn, efficient, math")
      ->capture_default_str();
  app.add_option("--vae-tile", vae_tile, "decode in spatial tiles of this many pixels (0: whole frames)")
      ->capture_default_str();
  app.add_flag("--i2v", i2v,
               "animate a synthetic first frame of --width x --height (TI2V models: the per-token timesteps of "
               "image-to-video)");
  app.add_flag("--keep-experts", keep_experts, "two-expert models: both transformers on the device (default: the idle one in host memory)");
  app.add_flag("--no-fused", no_fused, "run the DiT's fused stages as composites of ATen ops (for comparison)");
  app.add_flag("--attention-bench", attention_only, "only time the attention back ends at the model's shape");
  app.add_option("--lora-merge-bench", lora_rank, "only time merging a random LoRA of this rank into the transformer (CPU)");
  app.add_option("--weights", weights_encoding,
                 "random weights of the transformer blocks' matrices in this encoding: Q8_0, Q4_K, ..., F8_E4M3 (default: dense)");
  app.add_option("--cache", cache, "step caching, as kino generate --cache (teacache, magcache, easycache)");
  app.add_flag("--offload", offload, "stream the transformer's blocks from pinned host memory (--offload blocks)");
  app.add_option("--dit-step-bench", dit_passes, "only time this many passes of the transformer alone (with --weights)");
  app.add_option("--profile", profile_path, "write a Kineto trace of the second denoising step here and summarise it");
  CLI11_PARSE(app, argc, argv);

  try {
    kino::set_media_log_level(false);
    kino::ModelManifest m = kino::load_manifest(model, /*weights_required=*/false);
    auto t0 = std::chrono::steady_clock::now();
    const kino::WanDiTConfig dit = kino::dit_config(m);
    const kino::WanVAEConfig vae = kino::vae_config(m);
    const int64_t tokens = dit.tokens((frames - 1) / vae.temporal_stride() + 1, height / vae.spatial_stride(),
                                      width / vae.spatial_stride());
    if (lora_rank > 0) {
      Json r = {{"date", utc_now()}, {"device", "cpu"}, {"model", m.name}, {"lora_merge", lora_merge_bench(m, lora_rank)},
                {"kino_commit", commit}};
      if (!json_path.empty()) std::ofstream(json_path) << r.dump(2) << '\n';
      return 0;
    }
    if (dit_passes > 0) {
      const kino::WanVAEConfig v = kino::vae_config(m);
      Json r = {{"date", utc_now()},
                {"device", device_name.empty() ? device : device_name},
                {"model", m.name},
                {"width", width},
                {"height", height},
                {"frames", frames},
                {"dit_step", dit_step_bench(m, device, dtype, weights_encoding, offload, (frames - 1) / v.temporal_stride() + 1,
                                            height / v.spatial_stride(), width / v.spatial_stride(), dit_passes)},
                {"kino_commit", commit}};
      if (!json_path.empty()) std::ofstream(json_path) << r.dump(2) << '\n';
      return 0;
    }
    if (attention_only) {
      Json r = {{"date", utc_now()}, {"device", device_name.empty() ? device : device_name}, {"model", m.name},
                {"tokens", tokens}, {"attention", attention_bench(dit, tokens, device, kino::parse_dtype(dtype))},
                {"kino_commit", commit}};
      if (!json_path.empty()) std::ofstream(json_path) << r.dump(2) << '\n';
      return 0;
    }
    kino::nn::select_attention_backend(attention);
    kino::fused::set_enabled(!no_fused);
    kino::RuntimeOptions runtime;
    runtime.device = device;
    runtime.dtype = dtype;
    runtime.random_weights = true;
    runtime.vae_tile = vae_tile;
    runtime.keep_experts_on_device = keep_experts;
    runtime.offload_blocks = offload;
    runtime.random_encoding = weights_encoding;
    kino::Pipeline pipeline(m, runtime);
    const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    kino::GenerationRequest req;
    req.prompt = "a red fox running through snow at dawn";
    req.width = width;
    req.height = height;
    req.frames = frames;
    req.cfg = cfg;
    req.seed = 42;
    if (!cache.empty()) req.cache = cache;
    if (video_path.empty()) video_path = (std::filesystem::temp_directory_path() / "kino-bench.mp4").string();
    if (i2v) {  // a colour ramp; the request's size then follows the image, as `kino generate --image` does
      std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
      for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i / 3 % width) * 255 / width + 40 * (i % 3));
      req.image = (std::filesystem::temp_directory_path() / "kino-bench-first-frame.png").string();
      kino::write_png(*req.image, rgb.data(), width, height);
    }

    if (warmup_steps > 0) {
      req.steps = warmup_steps;
      pipeline.generate(pipeline.resolve(req, true));
    }
    req.steps = steps;
    const kino::GenerationSettings s = pipeline.resolve(req, true);
    if (s.width != width || s.height != height)
      throw kino::Error(kino::concat("--i2v: the model resizes a ", width, "x", height, " image to ", s.width, "x", s.height,
                               "; bench at that size"));
    kino::StageTimes tm;
    // --profile: the trace covers exactly step 2 (synchronised on both ends);
    // it slows that step a little, so the record's times come from a run
    // without it.
    Json profile;
    if (!profile_path.empty()) {
#ifdef KINO_HAS_KINETO
      namespace prof = torch::autograd::profiler;
      const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
      const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU,
                                                                      torch::profiler::impl::ActivityType::CUDA};
      prof::prepareProfiler(config, activities);
      kino::GenerationRequest short_req = req;
      short_req.steps = 3;
      pipeline.generate(pipeline.resolve(short_req, true), [&](const kino::Progress& p) {
        if (p.stage != "denoise") return;
        if (p.step == 1) {
          synchronize(device);
          prof::enableProfiler(config, activities);
        } else if (p.step == 2) {
          synchronize(device);
          prof::disableProfiler()->save(profile_path);
        }
      });
      profile = summarize_trace(profile_path);
#else
      throw kino::Error("--profile needs libtorch 2.x (Kineto)");
#endif
    }
    t0 = std::chrono::steady_clock::now();
    kino::Video video = pipeline.generate(s, {}, &tm);
    auto t1 = std::chrono::steady_clock::now();
    kino::write_video(video_path, video, {{"comment", "kino-bench, random weights"}});
    auto t2 = std::chrono::steady_clock::now();
    const double mux_s = std::chrono::duration<double>(t2 - t1).count();
    const double end_to_end_s = std::chrono::duration<double>(t2 - t0).count();

    const double passes = static_cast<double>(steps) * (cfg != 1.0 ? 2 : 1);
    const double flops = transformer_flops(dit, tokens) * passes;
    const double tflops = flops / tm.denoise_s / 1e12;

    nlohmann::json r = {{"date", utc_now()},
                        {"device", device_name.empty() ? device : device_name},
                        {"model", m.name},
                        {"weights", "random"},
                        {"weights_encoding", weights_encoding.empty() ? dtype : weights_encoding},
                        {"peak_rss_mb", kino::peak_memory_mb()},
                        {"offload_blocks", offload},
                        {"cache", s.cache},
                        {"transformer_passes", tm.transformer_passes},
                        {"reused_passes", tm.reused_passes},
                        {"dtype", dtype},
                        {"width", width},
                        {"height", height},
                        {"frames", frames},
                        {"steps", steps},
                        {"cfg", cfg},
                        {"image_to_video", i2v},
                        {"keep_experts_on_device", keep_experts},
                        {"sampler", s.sampler},
                        {"fused_stages", !no_fused},
                        {"fused_kernels_built", kino::fused::kernels_built()},
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
                        {"attention", attention},
                        {"vae_tile", vae_tile},
                        {"kino_commit", commit}};
    if (!profile.is_null()) r["profile"] = profile;
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
