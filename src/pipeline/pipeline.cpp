#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#ifdef KINO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "kino/error.h"
#include "kino/image.h"
#include "kino/pipeline.h"
#include "kino/tensor_file.h"
#include "kino/wan_t2v.h"

namespace kino {

namespace {

std::atomic<bool> g_stop{false};

using Json = nlohmann::json;

template <typename T>
void read(const Json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const Json::exception&) {
    throw Error(concat(where, ": config field '", key, "' has the wrong type"));
  }
}

template <typename Module, typename Config>
Module load_module(const std::string& path, Component component, const Config& cfg,
                   const std::optional<at::TensorOptions>& random) {
  Weights w = random ? Weights::random(0, *random) : Weights(path, component);
  Module m(cfg, w);
  w.finish();
  return m;
}

// Bytes of every weight of the model in the run dtype, from the file headers
// (nothing is loaded).
int64_t weight_bytes(const ModelManifest& m, at::ScalarType dtype) {
  int64_t total = 0;
  for (const std::string& path : {m.text_encoder, m.transformer, m.transformer_low_noise, m.vae}) {
    if (path.empty()) continue;
    const TensorSet set = TensorSet::open(path);
    for (const auto& name : set.names()) {
      const TensorView* v = set.find(name);
      const bool floating = v->dtype != DType::U8 && v->dtype != DType::BOOL && v->dtype != DType::I64 && v->dtype != DType::I32 &&
                            v->dtype != DType::I16 && v->dtype != DType::I8;
      total += floating ? v->numel() * static_cast<int64_t>(c10::elementSize(dtype)) : static_cast<int64_t>(v->nbytes);
    }
  }
  return total;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float32" || s == "fp32") return at::kFloat;
  if (s == "bfloat16" || s == "bf16") return at::kBFloat16;
  if (s == "float16" || s == "fp16") return at::kHalf;
  throw Error(concat("unknown dtype '", s, "' (expected float32, bfloat16 or float16)"));
}

at::Device parse_device(const std::string& s) {
  if (s == "auto") return at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  try {
    at::Device d(s);
    if (d.is_cuda() && !at::hasCUDA()) throw Error(concat("device '", s, "' requested, but this build or machine has no CUDA"));
    return d;
  } catch (const c10::Error&) {
    throw Error(concat("unknown device '", s, "' (expected auto, cpu or cuda[:N])"));
  }
}

UMT5Config umt5_config(const ModelManifest& m) {
  UMT5Config c;
  const std::string w = m.path + " text_encoder";
  const Json& j = m.text_encoder_config;
  read(j, "vocab", c.vocab, w);
  read(j, "dim", c.dim, w);
  read(j, "dim_attn", c.dim_attn, w);
  read(j, "dim_ffn", c.dim_ffn, w);
  read(j, "num_heads", c.num_heads, w);
  read(j, "num_layers", c.num_layers, w);
  read(j, "num_buckets", c.num_buckets, w);
  read(j, "shared_pos", c.shared_pos, w);
  return c;
}

WanDiTConfig dit_config(const ModelManifest& m, bool low_noise) {
  WanDiTConfig c;
  const std::string w = m.path + (low_noise ? " transformer_low_noise" : " transformer");
  const Json& j = low_noise ? m.transformer_low_noise_config : m.transformer_config;
  read(j, "in_dim", c.in_dim, w);
  read(j, "out_dim", c.out_dim, w);
  read(j, "dim", c.dim, w);
  read(j, "ffn_dim", c.ffn_dim, w);
  read(j, "freq_dim", c.freq_dim, w);
  read(j, "text_dim", c.text_dim, w);
  read(j, "text_len", c.text_len, w);
  read(j, "num_heads", c.num_heads, w);
  read(j, "num_layers", c.num_layers, w);
  read(j, "patch_size", c.patch_size, w);
  read(j, "qk_norm", c.qk_norm, w);
  read(j, "cross_attn_norm", c.cross_attn_norm, w);
  read(j, "eps", c.eps, w);
  return c;
}

WanVAEConfig vae_config(const ModelManifest& m) {
  const std::string w = m.path + " vae";
  const Json& j = m.vae_config;
  bool residual = false;  // Diffusers' name for the Wan2.2 design
  read(j, "is_residual", residual, w);
  WanVAEConfig c = residual ? WanVAEConfig::wan22_defaults() : WanVAEConfig();
  read(j, "dim", c.dim, w);
  read(j, "dec_dim", c.dec_dim, w);
  read(j, "z_dim", c.z_dim, w);
  read(j, "num_res_blocks", c.num_res_blocks, w);
  read(j, "dim_mult", c.dim_mult, w);
  read(j, "temperal_downsample", c.temporal_downsample, w);  // the official spelling
  read(j, "temporal_downsample", c.temporal_downsample, w);
  read(j, "latents_mean", c.latents_mean, w);
  read(j, "latents_std", c.latents_std, w);
  return c;
}

void request_stop() { g_stop.store(true); }
bool stop_requested() { return g_stop.load(); }

at::Tensor seeded_noise(uint64_t seed, at::IntArrayRef shape) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor video_to_uint8(const at::Tensor& video) {
  at::Tensor x = ((video.to(at::kCPU, at::kFloat) + 1) / 2).clamp(0, 1);
  return (x * 255).round().to(at::kByte).permute({1, 2, 3, 0}).contiguous();
}

at::Tensor image_to_tensor(const Image& image) {
  const at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, at::kByte);
  return u8.permute({2, 0, 1}).unsqueeze(1).to(at::kFloat).div(255).sub(0.5).div(0.5);
}

WanT2V::WanT2V(const ModelManifest& model, at::Device device, at::ScalarType dtype, bool random_weights,
               IdleExpert idle_expert)
    : WanT2V(model, device, dtype,
             random_weights ? std::optional<at::TensorOptions>(at::TensorOptions().device(device).dtype(dtype))
                            : std::nullopt,
             idle_expert) {}

WanT2V::WanT2V(const ModelManifest& model, at::Device device, at::ScalarType dtype,
               const std::optional<at::TensorOptions>& random, IdleExpert idle_expert)
    : device_(device),
      text_home_(device.is_cuda() ? at::Device(at::kCPU) : device),
      tokenizer_(model.tokenizer),
      t5_(load_module<UMT5Encoder>(model.text_encoder, Component::TextEncoder, umt5_config(model), random)),
      dit_(load_module<WanDiT>(model.transformer, Component::Transformer, dit_config(model), random)),
      vae_(load_module<WanVAE>(model.vae, Component::Vae, vae_config(model), random)),
      expert_home_(device.is_cuda() && !model.transformer_low_noise.empty() && idle_expert == IdleExpert::Host
                       ? at::Device(at::kCPU)
                       : device) {
  if (!model.transformer_low_noise.empty()) {
    dit_low_.emplace(load_module<WanDiT>(model.transformer_low_noise, Component::Transformer, dit_config(model, true), random));
    boundary_ = model.boundary_ratio * 1000;
    const WanDiTConfig &a = dit_.config(), &b = dit_low_->config();
    if (a.in_dim != b.in_dim || a.out_dim != b.out_dim || a.text_dim != b.text_dim || a.text_len != b.text_len ||
        a.patch_size != b.patch_size)
      throw Error(concat(model.path, ": the two transformers differ in in_dim, out_dim, text_dim, text_len or patch_size"));
    dit_low_->to(expert_home_, dtype);
    if (expert_home_ != device_) dit_low_->pin_memory();
  }
  if (tokenizer_.vocab_size() > t5_.config().vocab)
    throw Error(concat(model.tokenizer, ": ", tokenizer_.vocab_size(), " pieces exceed the text encoder's vocab of ",
                    t5_.config().vocab));
  if (t5_.config().dim != dit_.config().text_dim)
    throw Error(concat(model.path, ": text encoder dim ", t5_.config().dim, " != transformer text_dim ", dit_.config().text_dim));
  if (vae_.config().z_dim != dit_.config().in_dim)
    throw Error(concat(model.path, ": VAE z_dim ", vae_.config().z_dim, " != transformer in_dim ", dit_.config().in_dim));
  // umT5 runs in float32 on CPU when the run dtype is half (CPU has no fp16 matmul).
  t5_.to(at::TensorOptions().device(text_home_).dtype(device.is_cpu() && dtype == at::kHalf ? at::kFloat : dtype));
  if (text_home_ != device_) t5_.pin_memory();
  dit_.to(expert_home_, dtype);
  if (expert_home_ != device_) dit_.pin_memory();
  vae_.to(device, dtype == at::kHalf && device.is_cpu() ? at::kFloat : dtype);
}

int64_t WanT2V::size_multiple() const { return vae_.config().spatial_stride() * dit_.config().patch_size[1]; }

std::vector<at::Tensor> WanT2V::encode_texts(const std::vector<std::string>& prompts) const {
  c10::InferenceMode inference;
  // Away from its home the encoder runs on a temporary copy of its weights,
  // dropped afterwards: nothing is copied back, the pinned host copy stays.
  std::optional<UMT5Encoder> visiting;
  const UMT5Encoder* t5 = &t5_;
  if (text_home_ != device_) {
    visiting.emplace(t5_);
    visiting->to(at::TensorOptions().device(device_));
    t5 = &*visiting;
  }
  std::vector<at::Tensor> out;
  for (const auto& prompt : prompts) {
    Tokens t = tokenizer_.encode(prompt, text_len());
    at::Tensor ids = at::tensor(t.ids, at::kLong).view({1, -1}).to(device_);
    at::Tensor mask = at::tensor(t.mask, at::kLong).view({1, -1}).to(device_);
    out.push_back(t5->forward(ids, mask)[0].slice(0, 0, t.length).to(at::kFloat));
  }
  return out;
}

void WanT2V::synchronize() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
}

void WanT2V::release_cached_memory() const {
#ifdef KINO_WITH_CUDA
  if (device_.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

std::vector<int64_t> WanT2V::latent_shape(int64_t frames, int64_t height, int64_t width) const {
  const int64_t s = vae_.config().spatial_stride();
  return {vae_.config().z_dim, (frames - 1) / frame_multiple() + 1, height / s, width / s};
}

at::Tensor WanT2V::sample(const at::Tensor& noise, const at::Tensor& cond, const at::Tensor& uncond, SamplerKind kind,
                          int64_t steps, double shift, Guidance cfg, const StepObserver& observer,
                          const at::Tensor& first_frame) const {
  c10::InferenceMode inference;
  auto sampler = Sampler::create(kind, steps, shift);
  const int64_t seq_len = dit_.config().tokens(noise.size(1), noise.size(2), noise.size(3));
  at::Tensor latent = noise.to(device_);
  const bool image = first_frame.defined();
  if (image) {
    if (!takes_first_frame()) throw Error("this model does not animate an image (Wan2.2 TI2V models do)");
    if (first_frame.dim() != 4 || first_frame.size(1) != 1 || first_frame.size(0) != latent.size(0) ||
        first_frame.size(2) != latent.size(2) || first_frame.size(3) != latent.size(3))
      throw Error(concat("first frame latent ", first_frame.sizes(), " does not fit the latent ", latent.sizes()));
    latent = latent.clone();
    latent.slice(1, 0, 1).copy_(first_frame);
  }
  // Frame 0's tokens run at timestep 0 when it is an image.
  auto first_t = [&](size_t n) { return image ? std::vector<int64_t>(n, 0) : std::vector<int64_t>{}; };
  // Experts kept in host memory visit the device for their run of steps: a
  // copy of the weights, dropped (its memory reused by the next) at the switch.
  std::optional<WanDiT> visiting;
  bool visiting_low = false;
  auto expert = [&](bool low) -> const WanDiT& {
    const WanDiT& home = low ? *dit_low_ : dit_;
    if (expert_home_ == device_) return home;
    if (!visiting || visiting_low != low) {
      visiting.reset();
      visiting.emplace(home);
      visiting->to(device_);
      visiting_low = low;
    }
    return *visiting;
  };
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t t = sampler->schedule().timesteps[static_cast<size_t>(i)];
    Step s{i, {}, {}, {}, {}};
    s.low_noise_expert = dit_low_ && static_cast<double>(t) < boundary_;
    s.guidance = s.low_noise_expert ? cfg.low_noise : cfg.scale;
    const WanDiT& dit = expert(s.low_noise_expert);
    // Guidance 1 needs no unconditional pass: v = v_u + 1 * (v_c - v_u) = v_c.
    if (s.guidance != 1.0) {
      std::vector<at::Tensor> v = dit.forward({latent, latent}, {t, t}, {cond, uncond}, seq_len, nullptr, first_t(2));
      s.cond = v[0];
      s.uncond = v[1];
      s.guided = s.uncond + s.guidance * (s.cond - s.uncond);
    } else {
      s.cond = s.guided = dit.forward({latent}, {t}, {cond}, seq_len, nullptr, first_t(1))[0];
    }
    latent = sampler->step(s.guided.unsqueeze(0), latent.unsqueeze(0)).squeeze(0);
    if (image) latent.slice(1, 0, 1).copy_(first_frame);
    s.latent = latent;
    if (observer) observer(s);
  }
  return latent;
}

bool WanT2V::takes_first_frame() const { return vae_.config().wan22 && !dit_low_; }

at::Tensor WanT2V::encode_image(const at::Tensor& image) const {
  c10::InferenceMode inference;
  return vae_.encode(image);
}

at::Tensor WanT2V::decode(const at::Tensor& latent, int64_t tile) const {
  c10::InferenceMode inference;
  return vae_.decode(latent, tile);
}

Pipeline::Pipeline(const ModelManifest& model, const RuntimeOptions& runtime) : model_(model) {
  const int threads = runtime.threads > 0 ? runtime.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  const at::Device device = parse_device(runtime.device);
  // "auto": bf16 on a GPU (as the official Wan code runs), float32 on a CPU.
  const at::ScalarType dtype = runtime.dtype == "auto" ? (device.is_cuda() ? at::kBFloat16 : at::kFloat)
                                                       : parse_dtype(runtime.dtype);
  if (!runtime.random_weights) {
    // Loading goes through host memory whatever the device: refuse before it.
    memory_.weight_bytes = weight_bytes(model, dtype);
    const int64_t available = available_memory_bytes();
    if (available >= 0 && memory_.weight_bytes > available)
      throw Error(concat(model.path, ": the weights need ", format_gb(memory_.weight_bytes), " of memory in ",
                         c10::toString(dtype), ", ", format_gb(available), " are available: use a smaller --dtype"));
  }
  impl_ = std::make_unique<WanT2V>(model, device, dtype, runtime.random_weights,
                                   runtime.keep_experts_on_device ? WanT2V::IdleExpert::Device : WanT2V::IdleExpert::Host);
  const WanDiTConfig& dit = impl_->transformer().config();
  const WanVAEConfig& vae = impl_->vae().config();
  memory_.dit_dim = dit.dim;
  memory_.dit_ffn = dit.ffn_dim;
  memory_.dit_heads = dit.num_heads;
  memory_.patch_t = dit.patch_size[0];
  memory_.patch_h = dit.patch_size[1];
  memory_.patch_w = dit.patch_size[2];
  // Wan2.2's decoder ends at half resolution (then the pixel unpatchify):
  // its widest full-frame stage is dec_dim / 2 channels per full-size pixel.
  memory_.vae_dim = vae.decoder_dim() / vae.patch();
  memory_.vae_temporal = vae.temporal_stride();
  memory_.vae_spatial = vae.spatial_stride();
  const int64_t s = vae.spatial_stride();
  if (runtime.vae_tile != 0 && (runtime.vae_tile < 2 * s || runtime.vae_tile % s))
    throw Error(concat("--vae-tile ", runtime.vae_tile, ": must be 0 (whole frames) or a multiple of ", s, " from ", 2 * s));
  vae_tile_ = memory_.vae_tile = runtime.vae_tile;
  memory_.fused_attention = nn::kFusedAttention;
  check_memory_ = device.is_cpu();
}

Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

GenerationSettings Pipeline::resolve(const GenerationRequest& r, bool strict) const {
  const GenerationDefaults& d = model_.defaults;
  GenerationSettings s;
  s.prompt = r.prompt;
  s.negative = r.negative.value_or("");
  if (s.negative.empty()) s.negative = d.negative_prompt;
  s.sampler = sampler_name(parse_sampler(r.sampler.value_or(d.sampler)));
  s.steps = r.steps.value_or(d.steps);
  s.cfg = r.cfg.value_or(d.cfg);
  // A single --cfg guides both experts, as the official code's single float.
  s.cfg_low_noise = !impl_->has_low_noise_expert() ? s.cfg
                    : r.cfg_low_noise                ? *r.cfg_low_noise
                    : r.cfg                          ? *r.cfg
                                                     : d.cfg_low_noise.value_or(d.cfg);
  s.shift = r.shift.value_or(d.shift);
  s.width = r.width.value_or(d.width);
  s.height = r.height.value_or(d.height);
  s.fps = r.fps.value_or(d.fps);
  s.frames = r.frames.value_or(d.frames);
  s.seed = r.seed ? *r.seed : std::random_device{}() | (uint64_t{std::random_device{}()} << 32);

  if (!is_valid_utf8(s.prompt)) throw Error("the prompt is not valid UTF-8");
  if (!is_valid_utf8(s.negative)) throw Error("the negative prompt is not valid UTF-8");
  for (const auto& [what, text] : {std::pair<const char*, const std::string&>{"prompt", s.prompt}, {"negative prompt", s.negative}})
    if (impl_->truncates(text))
      s.warnings.push_back(concat("the ", what, " is longer than the text encoder's ", impl_->text_len(), " tokens; the rest is ignored"));
  if (s.steps < 1 || s.steps > 1000) throw Error(concat("--steps must be in 1..1000, got ", s.steps));
  if (!std::isfinite(s.cfg) || s.cfg < 0) throw Error(concat("--cfg must be a non-negative number, got ", s.cfg));
  if (!std::isfinite(s.cfg_low_noise) || s.cfg_low_noise < 0)
    throw Error(concat("--cfg-low-noise must be a non-negative number, got ", s.cfg_low_noise));
  if (!std::isfinite(s.shift) || s.shift <= 0) throw Error(concat("--shift must be positive, got ", s.shift));
  if (!std::isfinite(s.fps) || s.fps <= 0 || s.fps > 240) throw Error(concat("--fps must be in (0, 240], got ", s.fps));

  const int64_t fm = impl_->frame_multiple(), sm = impl_->size_multiple();
  if (r.aspect) {
    // Same pixel count as the model's default size, the requested ratio.
    double aw = 0, ah = 0;
    char colon = 0;
    if (std::sscanf(r.aspect->c_str(), "%lf%c%lf", &aw, &colon, &ah) != 3 || colon != ':' || !(aw > 0) || !(ah > 0))
      throw Error(concat("--aspect must look like 16:9, got '", *r.aspect, "'"));
    const double area = static_cast<double>(d.width) * static_cast<double>(d.height);
    s.width = std::max<int64_t>(sm, std::llround(std::sqrt(area * aw / ah) / sm) * sm);
    s.height = std::max<int64_t>(sm, std::llround(std::sqrt(area * ah / aw) / sm) * sm);
  }
  if (r.seconds) {
    if (!std::isfinite(*r.seconds) || *r.seconds <= 0) throw Error(concat("--seconds must be positive, got ", *r.seconds));
    const int64_t n = std::max<int64_t>(0, std::llround((*r.seconds * s.fps - 1) / fm));
    s.frames = n * fm + 1;
  }
  if (r.image) {
    // textimage2video.py: the output size follows the image's aspect ratio
    // within the model's default pixel count, whatever the size asked.
    if (!impl_->takes_first_frame())
      throw Error(concat("--image: ", model_.name, " does not animate images (Wan2.2 TI2V models do)"));
    s.image = *r.image;
    const Image img = read_image(s.image);
    const auto [w, h] = best_output_size(img.width, img.height, sm, sm, d.width * d.height);
    if ((r.width || r.height || r.aspect) && (w != s.width || h != s.height))
      s.warnings.push_back(concat("the output size follows the image: ", w, "x", h));
    s.width = w;
    s.height = h;
  }
  if (s.frames < 1 || s.frames > 4096) throw Error(concat("--frames must be in 1..4096, got ", s.frames));
  if (s.width < 1 || s.height < 1 || s.width > 8192 || s.height > 8192)
    throw Error(concat("--size must be between 1 and 8192 on each side, got ", s.width, "x", s.height));
  auto fix = [&](int64_t& value, int64_t valid, const std::string& what, const std::string& rule) {
    if (value == valid) return;
    if (strict) throw Error(concat(what, " must be ", rule, ", got ", value, " (nearest valid: ", valid, ")"));
    s.warnings.push_back(concat(what, " ", value, " is not ", rule, "; using ", valid));
    value = valid;
  };
  fix(s.frames, std::max<int64_t>(0, std::llround(static_cast<double>(s.frames - 1) / fm)) * fm + 1, "--frames",
      concat(fm, "k+1"));
  fix(s.width, std::max<int64_t>(1, std::llround(static_cast<double>(s.width) / sm)) * sm, "width",
      concat("a multiple of ", sm));
  fix(s.height, std::max<int64_t>(1, std::llround(static_cast<double>(s.height) / sm)) * sm, "height",
      concat("a multiple of ", sm));
  if (check_memory_)
    check_fits(memory_, MemoryRequest{s.width, s.height, s.frames, s.cfg != 1.0 || s.cfg_low_noise != 1.0},
               available_memory_bytes(), fm, sm);
  return s;
}

Video Pipeline::generate(const GenerationSettings& s, const ProgressCallback& progress, StageTimes* times) {
  auto check_stop = [] {
    if (stop_requested()) throw Interrupted();
  };
  auto report = [&](const char* stage, int64_t step = 0, int64_t steps = 0) {
    if (progress) progress(Progress{stage, step, steps});
  };
  StageTimes local;
  StageTimes& tm = times ? *times : local;

  check_stop();
  report("encode");
  auto t0 = std::chrono::steady_clock::now();
  // Guidance 1 never uses the negative prompt (see WanT2V::sample).
  const bool guided = s.cfg != 1.0 || s.cfg_low_noise != 1.0;
  std::vector<at::Tensor> contexts = impl_->encode_texts(guided ? std::vector<std::string>{s.prompt, s.negative}
                                                                : std::vector<std::string>{s.prompt});
  at::Tensor cond = contexts[0], uncond = contexts.back();
  at::Tensor first_frame;
  if (!s.image.empty()) {
    const Image img = prepare_first_frame(read_image(s.image), impl_->size_multiple(), model_.defaults.width * model_.defaults.height);
    if (img.width != s.width || img.height != s.height)
      throw Error(concat(s.image, ": prepared as ", img.width, "x", img.height, ", the settings say ", s.width, "x", s.height));
    first_frame = impl_->encode_image(image_to_tensor(img));
  }
  impl_->synchronize();
  impl_->release_cached_memory();  // the encoder's GPU copy
  tm.text_s = seconds_since(t0);

  check_stop();
  report("denoise", 0, s.steps);
  t0 = std::chrono::steady_clock::now();
  at::Tensor noise = seeded_noise(s.seed, impl_->latent_shape(s.frames, s.height, s.width));
  at::Tensor latent = impl_->sample(noise, cond, uncond, parse_sampler(s.sampler), s.steps, s.shift, Guidance(s.cfg, s.cfg_low_noise),
                                    [&](const WanT2V::Step& st) {
                                      report("denoise", st.index + 1, s.steps);
                                      check_stop();
                                    },
                                    first_frame);
  impl_->synchronize();
  tm.denoise_s = seconds_since(t0);
  impl_->release_cached_memory();  // the transformer's activations, before the VAE's

  report("decode");
  t0 = std::chrono::steady_clock::now();
  at::Tensor frames = video_to_uint8(impl_->decode(latent, vae_tile_));
  tm.decode_s = seconds_since(t0);

  Video v;
  v.frames = frames.size(0);
  v.height = frames.size(1);
  v.width = frames.size(2);
  v.fps = s.fps;
  v.rgb.assign(frames.data_ptr<uint8_t>(), frames.data_ptr<uint8_t>() + frames.numel());
  return v;
}

}  // namespace kino
