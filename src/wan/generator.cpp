#include "wan/generator.h"

#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#ifdef KINO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <cmath>

#include "adapters/lora_merge.h"
#include "adapters/lora_plan.h"
#include "kino/error.h"
#include "loading/layouts.h"
#include "media/video_reader.h"
#include "wan/i2v_inputs.h"
#include "wan/vace_inputs.h"
#include "wan/ti2v_image.h"

namespace kino {

namespace {

// A module from its manifest component's weights, as its index maps them
// (or random ones of its shapes, the transformers' matrices in `encoding`).
template <typename Module, typename Config>
Module load_module(const ModelManifest& m, const std::string& component, const Config& cfg, const LoadOptions& o) {
  if (o.random_weights) {
    const bool transformer = component.rfind("transformer", 0) == 0;
    // Streamed transformers are made in host memory, where they wait.
    const at::Device where = transformer && o.offload_blocks ? at::Device(at::kCPU) : o.device;
    Weights w = Weights::random(0, at::TensorOptions().device(where).dtype(o.dtype), transformer ? o.random_encoding : std::nullopt);
    return Module(cfg, w);
  }
  auto index = m.weight_index.find(component);
  if (index == m.weight_index.end()) throw Error(concat(m.path, ": the ", component, " weights were not indexed"));
  Weights w(*index->second);
  w.set_patch(lora_patch(m, component), lora_targets(m, component), lora_low_rank(m, component));
  Module module(cfg, w);
  w.finish();
  return module;
}

LoadOptions load_options(at::Device device, at::ScalarType dtype, bool random_weights, WanGenerator::IdleExpert idle) {
  LoadOptions o;
  o.device = device;
  o.dtype = dtype;
  o.random_weights = random_weights;
  o.keep_experts_on_device = idle == WanGenerator::IdleExpert::Device;
  return o;
}

}  // namespace

WanGenerator::WanGenerator(const ModelManifest& model, at::Device device, at::ScalarType dtype, bool random_weights,
                           IdleExpert idle_expert)
    : WanGenerator(model, load_options(device, dtype, random_weights, idle_expert)) {}

WanGenerator::WanGenerator(const ModelManifest& model, const LoadOptions& o)
    : task_(model.task),
      cache_constants_(cache_constants(cache_constants_name(model))),
      image_area_(model.defaults.width * model.defaults.height),
      device_(o.device),
      text_home_(o.device.is_cuda() ? at::Device(at::kCPU) : o.device),
      tokenizer_(model.tokenizer),
      t5_(load_module<UMT5Encoder>(model, "text_encoder", umt5_config(model), o)),
      dit_(load_module<WanDiT>(model, "transformer", dit_config(model), o)),
      vae_(load_module<WanVAE>(model, "vae", vae_config(model), o)),
      expert_home_(o.device.is_cuda() && !model.transformer_low_noise.empty() && !o.keep_experts_on_device && !o.offload_blocks
                       ? at::Device(at::kCPU)
                       : o.device) {
  const at::Device device = o.device;
  const at::ScalarType dtype = o.dtype;
  // A transformer where it runs: on the device, waiting in pinned host
  // memory (an idle expert), or streamed block by block.
  auto place = [&](WanDiT& dit) {
    if (o.offload_blocks) {
      dit.to(at::kCPU, dtype);
      dit.stream_blocks(device);
      return;
    }
    dit.to(expert_home_, dtype);
    if (expert_home_ != device_) dit.pin_memory();
  };
  if (!model.transformer_low_noise.empty()) {
    dit_low_.emplace(load_module<WanDiT>(model, "transformer_low_noise", dit_config(model, true), o));
    boundary_ = model.boundary_ratio * 1000;
    const WanDiTConfig &a = dit_.config(), &b = dit_low_->config();
    if (a.in_dim != b.in_dim || a.out_dim != b.out_dim || a.text_dim != b.text_dim || a.text_len != b.text_len ||
        a.patch_size != b.patch_size)
      throw Error(concat(model.path, ": the two transformers differ in in_dim, out_dim, text_dim, text_len or patch_size"));
    place(*dit_low_);
  }
  if (!model.image_encoder.empty()) {
    clip_.emplace(load_module<ClipVision>(model, "image_encoder", clip_config(model), o));
    if (clip_->config().dim != dit_.config().image_dim)
      throw Error(concat(model.path, ": image encoder dim ", clip_->config().dim, " != transformer image_dim ", dit_.config().image_dim));
    // On a GPU the encoder, used once per video, waits in pinned host memory
    // as umT5 does (the official offload_model).
    clip_->to(text_home_, dtype == at::kHalf && device.is_cpu() ? at::kFloat : dtype);
    if (text_home_ != device_) clip_->pin_memory();
  } else if (dit_.config().image_dim) {
    throw Error(concat(model.path, ": the transformer reads CLIP image features: give an image_encoder"));
  }
  // I2V's input: the latent, the 4 mask channels and the condition's latent.
  if (takes_image_condition() && dit_.config().in_dim != 2 * vae_.config().z_dim + 4)
    throw Error(concat(model.path, ": an image-to-video transformer takes 2 z_dim + 4 = ", 2 * vae_.config().z_dim + 4,
                       " input channels, this one ", dit_.config().in_dim));
  if (tokenizer_.vocab_size() > t5_.config().vocab)
    throw Error(concat(model.tokenizer, ": ", tokenizer_.vocab_size(), " pieces exceed the text encoder's vocab of ",
                    t5_.config().vocab));
  if (t5_.config().dim != dit_.config().text_dim)
    throw Error(concat(model.path, ": text encoder dim ", t5_.config().dim, " != transformer text_dim ", dit_.config().text_dim));
  if (!takes_image_condition() && vae_.config().z_dim != dit_.config().in_dim)
    throw Error(concat(model.path, ": VAE z_dim ", vae_.config().z_dim, " != transformer in_dim ", dit_.config().in_dim));
  // umT5 runs in float32 on CPU when the run dtype is half (CPU has no fp16 matmul).
  t5_.to(at::TensorOptions().device(text_home_).dtype(device.is_cpu() && dtype == at::kHalf ? at::kFloat : dtype));
  if (text_home_ != device_) t5_.pin_memory();
  place(dit_);
  vae_.to(device, dtype == at::kHalf && device.is_cpu() ? at::kFloat : dtype);
}

std::vector<at::Tensor> WanGenerator::encode_texts(const std::vector<std::string>& prompts) const {
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

void WanGenerator::synchronize() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
}

void WanGenerator::release_cached_memory() const {
#ifdef KINO_WITH_CUDA
  if (device_.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

std::vector<int64_t> WanGenerator::latent_shape(int64_t frames, int64_t height, int64_t width) const {
  const int64_t s = vae_.config().spatial_stride();
  return {vae_.config().z_dim, (frames - 1) / vae_.config().temporal_stride() + 1, height / s, width / s};
}

at::Tensor WanGenerator::sample(const at::Tensor& noise, const at::Tensor& cond, const at::Tensor& uncond, SamplerKind kind,
                                int64_t steps, double shift, Guidance cfg, const StepObserver& observer,
                                const SampleInputs& inputs, StepCache* cache) const {
  c10::InferenceMode inference;
  const at::Tensor &first_frame = inputs.first_frame, &condition = inputs.condition, &image_features = inputs.image_features;
  auto sampler = Sampler::create(kind, steps, shift);
  sampler->begin_at(inputs.first_step);
  const int64_t seq_len = dit_.config().tokens(noise.size(1), noise.size(2), noise.size(3));
  at::Tensor latent = noise.to(device_);
  const bool image = first_frame.defined();
  if (image) {
    if (!takes_first_frame()) throw Error("this model does not animate an image (TI2V models do)");
    if (first_frame.dim() != 4 || first_frame.size(1) != 1 || first_frame.size(0) != latent.size(0) ||
        first_frame.size(2) != latent.size(2) || first_frame.size(3) != latent.size(3))
      throw Error(concat("first frame latent ", first_frame.sizes(), " does not fit the latent ", latent.sizes()));
    latent = latent.clone();
    latent.slice(1, 0, 1).copy_(first_frame);
  }
  // Frame 0's tokens run at timestep 0 when it is an image.
  auto first_t = [&](size_t n) { return image ? std::vector<double>(n, 0.0) : std::vector<double>{}; };
  // I2V: the condition rides along every input (model.py: cat([x, y])), the
  // CLIP tokens (FLF2V: both images') along every context.
  if (takes_image_condition() != condition.defined())
    throw Error(takes_image_condition() ? "this image-to-video model needs an image condition" : "this model takes no image condition");
  if (condition.defined() && (condition.dim() != 4 || condition.size(1) != latent.size(1) || condition.size(2) != latent.size(2) ||
                              condition.size(3) != latent.size(3) || condition.size(0) + latent.size(0) != dit_.config().in_dim))
    throw Error(concat("image condition ", condition.sizes(), " does not fit the latent ", latent.sizes()));
  const at::Tensor y = condition.defined() ? condition.to(device_) : at::Tensor();
  auto input = [&] { return y.defined() ? at::cat({latent, y}) : latent; };
  const std::vector<at::Tensor> features =
      image_features.defined() ? std::vector<at::Tensor>{image_features.reshape({-1, image_features.size(-1)})}
                               : std::vector<at::Tensor>{};
  auto images = [&](size_t n) {
    std::vector<at::Tensor> out;
    for (size_t k = 0; k < n && !features.empty(); ++k) out.push_back(features[0]);
    return out;
  };
  // VACE: one context for every pass and step.
  if (takes_vace() != inputs.vace_context.defined())
    throw Error(takes_vace() ? "this VACE model needs a VACE context" : "this model takes no VACE context");
  const at::Tensor& z = inputs.vace_context;
  if (z.defined() && (z.dim() != 4 || z.size(0) != dit_.config().vace_in_dim || z.size(1) != latent.size(1) ||
                      z.size(2) != latent.size(2) || z.size(3) != latent.size(3)))
    throw Error(concat("VACE context ", z.sizes(), " does not fit the latent ", latent.sizes()));
  auto vace = [&](size_t n) {
    return z.defined() ? std::optional<VaceInput>(VaceInput{std::vector<at::Tensor>(n, z.to(device_)), inputs.context_scale})
                       : std::nullopt;
  };
  const std::optional<VaceInput> vace_one = vace(1);
  const bool windowed = inputs.windows.active(latent.size(1));
  if (windowed && cache) throw Error("step caching and context windows do not combine yet");
  if (!inputs.travel_contexts.empty() && (!windowed || inputs.travel_contexts.size() != inputs.travel_starts.size()))
    throw Error("prompt travel needs context windows and one start frame per prompt");
  if (windowed && image && inputs.windows.schedule == WindowSpec::Schedule::Looped)
    throw Error("looped context windows cannot keep a first frame (TI2V image-to-video): use static or uniform");
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
  bool previous_expert_low = false;
  for (int64_t i = inputs.first_step; i < steps; ++i) {
    const double t = sampler->schedule().timesteps[static_cast<size_t>(i)];
    Step s{i, {}, {}, {}, {}};
    s.low_noise_expert = dit_low_ && t < boundary_;
    s.guidance = s.low_noise_expert ? cfg.low_noise : cfg.scale;
    const WanDiT& dit = expert(s.low_noise_expert);
    if (cache && i > inputs.first_step && s.low_noise_expert != previous_expert_low) cache->reset();
    previous_expert_low = s.low_noise_expert;
    // Guidance 1 needs no unconditional pass: v = v_u + 1 * (v_c - v_u) = v_c.
    const std::vector<at::Tensor> contexts = s.guidance != 1.0 ? std::vector<at::Tensor>{cond, uncond} : std::vector<at::Tensor>{cond};
    const std::optional<VaceInput> vace_all = vace(contexts.size());
    const std::vector<at::Tensor> v =
        cache      ? cached_passes(dit, *cache, i, t, latent, input(), contexts, seq_len, first_t(1), images(1),
                                   vace_one ? &*vace_one : nullptr, s)
        : windowed ? windowed_passes(dit, inputs.windows, i, t, input(), contexts, image, images(contexts.size()), inputs, s)
                   : dit.forward(std::vector<at::Tensor>(contexts.size(), input()), std::vector<double>(contexts.size(), t), contexts,
                            seq_len, nullptr, first_t(contexts.size()), images(contexts.size()), nullptr,
                            vace_all ? &*vace_all : nullptr);
    s.cond = v[0];
    if (v.size() == 2) {
      s.uncond = v[1];
      s.guided = s.uncond + s.guidance * (s.cond - s.uncond);
    } else {
      s.guided = s.cond;
    }
    latent = sampler->step(s.guided.unsqueeze(0), latent.unsqueeze(0)).squeeze(0);
    if (image) latent.slice(1, 0, 1).copy_(first_frame);
    s.latent = latent;
    if (observer) observer(s);
  }
  // NaN and infinity survive every later step: one check here (not a device
  // sync per step) keeps a broken run from being decoded and written.
  if (!std::isfinite(latent.sum().item<double>()))
    throw Error("the sampled latent is not finite (NaN or infinity); no video is written");
  return latent;
}

// One step's transformer passes over context windows (ComfyUI's
// IndexListContextHandler.execute): each window's frames of the input (the
// I2V condition and the VACE context sliced alike) through the DiT, every
// frame's velocity the weighted mean of the windows holding it. A first
// frame (TI2V) keeps timestep 0 in the window that starts with it.
std::vector<at::Tensor> WanGenerator::windowed_passes(const WanDiT& dit, const ContextWindows& windows, int64_t step, double t,
                                                      const at::Tensor& x, const std::vector<at::Tensor>& contexts,
                                                      bool first_frame, const std::vector<at::Tensor>& image,
                                                      const SampleInputs& inputs, Step& report) const {
  const int64_t frames = x.size(1);
  const size_t n = contexts.size();
  const at::Tensor& vace = inputs.vace_context;
  std::vector<at::Tensor> sum(n);
  at::Tensor total = at::zeros({frames}, x.options().dtype(at::kFloat));
  const std::vector<std::vector<int64_t>> list = windows.windows(frames, step);
  for (const std::vector<int64_t>& w : list) {
    const at::Tensor idx = at::tensor(w, at::kLong).to(x.device());
    const at::Tensor xw = x.index_select(1, idx);
    const int64_t seq_len = dit.config().tokens(xw.size(1), xw.size(2), xw.size(3));
    std::optional<VaceInput> vw;
    if (vace.defined()) vw = VaceInput{std::vector<at::Tensor>(n, vace.to(x.device()).index_select(1, idx)), inputs.context_scale};
    const std::vector<double> firsts = first_frame && w[0] == 0 ? std::vector<double>(n, 0.0) : std::vector<double>{};
    // Prompt travel: the shot holding the window's middle frame.
    std::vector<at::Tensor> ctx = contexts;
    if (!inputs.travel_contexts.empty()) {
      const int64_t middle = w[w.size() / 2];
      size_t shot = 0;
      while (shot + 1 < inputs.travel_starts.size() && inputs.travel_starts[shot + 1] <= middle) ++shot;
      ctx[0] = inputs.travel_contexts[shot];
    }
    const std::vector<at::Tensor> out = dit.forward(std::vector<at::Tensor>(n, xw), std::vector<double>(n, t), ctx, seq_len, nullptr,
                                                    firsts, image, nullptr, vw ? &*vw : nullptr);
    const std::vector<double> weights = windows.weights(w, frames);
    const at::Tensor wt = at::tensor(weights, at::kDouble).to(x.device(), at::kFloat);
    for (size_t b = 0; b < n; ++b) {
      if (!sum[b].defined()) sum[b] = at::zeros({out[b].size(0), frames, out[b].size(2), out[b].size(3)}, out[b].options());
      sum[b].index_add_(1, idx, out[b] * wt.view({1, -1, 1, 1}));
    }
    total.index_add_(0, idx, wt);
  }
  for (at::Tensor& v : sum) v = v / total.view({1, -1, 1, 1});
  report.windows = static_cast<int>(list.size());
  return sum;
}

// One step's transformer passes under a step cache: each branch computed,
// computed without its blocks (a residual added), or its output reused;
// branches that do the same run as one batch.
std::vector<at::Tensor> WanGenerator::cached_passes(const WanDiT& dit, StepCache& cache, int64_t step, double t,
                                                    const at::Tensor& latent, const at::Tensor& x,
                                                    const std::vector<at::Tensor>& contexts, int64_t seq_len,
                                                    const std::vector<double>& first_t, const std::vector<at::Tensor>& image,
                                                    const VaceInput* vace, Step& report) const {
  const int n = static_cast<int>(contexts.size());
  at::Tensor modulated;
  if (const int which = cache.modulated_input()) {
    const auto [e, e0] = dit.time_embedding(t);
    modulated = which == 1 ? e : e0;
  }
  std::vector<StepCache::Action> actions;
  for (int b = 0; b < n; ++b) actions.push_back(cache.decide(step, b, latent, modulated));
  std::vector<at::Tensor> out(static_cast<size_t>(n)), residuals(static_cast<size_t>(n));
  auto run = [&](const std::vector<int>& branches, StepCache::Action action) {
    if (branches.empty()) return;
    const size_t m = branches.size();
    std::vector<at::Tensor> ctx, adds;
    for (int b : branches) {
      ctx.push_back(contexts[static_cast<size_t>(b)]);
      if (action == StepCache::Action::AddResidual) adds.push_back(cache.residual(b));
    }
    BlockResidual hook;
    at::Tensor residual;
    if (action == StepCache::Action::AddResidual) hook.add = at::cat(adds);
    else hook.residual = &residual;
    std::vector<double> firsts;
    std::vector<at::Tensor> images;
    std::optional<VaceInput> vaces;
    if (vace) vaces = VaceInput{{}, vace->scale};
    for (size_t k = 0; k < m; ++k) {
      if (!first_t.empty()) firsts.push_back(first_t[0]);
      if (!image.empty()) images.push_back(image[0]);
      if (vace) vaces->context.push_back(vace->context[0]);
    }
    const std::vector<at::Tensor> v = dit.forward(std::vector<at::Tensor>(m, x), std::vector<double>(m, t), ctx, seq_len, nullptr,
                                                  firsts, images, &hook, vaces ? &*vaces : nullptr);
    for (size_t k = 0; k < m; ++k) {
      out[static_cast<size_t>(branches[k])] = v[k];
      residuals[static_cast<size_t>(branches[k])] = residual.defined() ? residual.narrow(0, static_cast<int64_t>(k), 1) : at::Tensor();
    }
  };
  std::vector<int> computed, shortened;
  for (int b = 0; b < n; ++b) {
    if (actions[static_cast<size_t>(b)] == StepCache::Action::Compute) computed.push_back(b);
    else if (actions[static_cast<size_t>(b)] == StepCache::Action::AddResidual) shortened.push_back(b);
    else out[static_cast<size_t>(b)] = cache.reused_output(b, latent);
  }
  run(computed, StepCache::Action::Compute);
  run(shortened, StepCache::Action::AddResidual);
  for (int b = 0; b < n; ++b) cache.record(step, b, latent, out[static_cast<size_t>(b)], residuals[static_cast<size_t>(b)]);
  report.cond_computed = actions[0] == StepCache::Action::Compute;
  report.uncond_computed = n < 2 || actions[1] == StepCache::Action::Compute;
  return out;
}

at::Tensor WanGenerator::encode_image(const at::Tensor& image) const {
  c10::InferenceMode inference;
  return vae_.encode(image);
}

at::Tensor WanGenerator::decode(const at::Tensor& latent, int64_t tile) const {
  c10::InferenceMode inference;
  return vae_.decode(latent, tile);
}


at::Tensor WanGenerator::image_condition(const at::Tensor& first, const at::Tensor& last, int64_t frames, int64_t h,
                                         int64_t w) const {
  c10::InferenceMode inference;
  const int64_t s = vae_.config().spatial_stride();
  if (last.defined() && frames < 5) throw Error(concat("a first and a last frame need 5 or more frames, got ", frames));
  const at::Tensor video = i2v_vae_input(first, last, frames, h, w).to(device_);
  const at::Tensor latent = vae_.encode(video).to(at::kFloat);
  return at::cat({i2v_mask(frames, h / s, w / s, last.defined()).to(latent.device()), latent});
}

at::Tensor WanGenerator::encode_clip(const std::vector<at::Tensor>& images, Trace* trace) const {
  c10::InferenceMode inference;
  if (!clip_) throw Error("this model has no image encoder");
  if (text_home_ == device_) return clip_->forward(images, trace).to(at::kFloat);
  ClipVision visiting(*clip_);  // a temporary copy on the device, as encode_texts does
  visiting.to(device_, visiting.dtype());
  return visiting.forward(images, trace).to(at::kFloat);
}

at::Tensor WanGenerator::vace_context(const at::Tensor& frames, const at::Tensor& mask,
                                      const std::vector<at::Tensor>& references) const {
  c10::InferenceMode inference;
  const int64_t z = vae_.config().z_dim;
  if (frames.dim() != 4 || frames.size(0) != 3 || mask.dim() != 3 || mask.size(0) != frames.size(1) ||
      mask.size(1) != frames.size(2) || mask.size(2) != frames.size(3))
    throw Error(concat("VACE: frames ", frames.sizes(), " and mask ", mask.sizes(), " do not fit each other"));
  if (z * 2 + 64 != dit_.config().vace_in_dim)
    throw Error(concat("VACE: a context of 2 x ", z, " latent + 64 mask channels does not fit vace_in_dim ", dit_.config().vace_in_dim));
  // vace_encode_frames: the kept ("inactive") and generated ("reactive")
  // parts under the binarised mask, each encoded as a whole video.
  const at::Tensor video = frames.to(device_, at::kFloat), m = mask.to(device_, at::kFloat);
  const at::Tensor generated = at::where(m > 0.5, 1.0, 0.0).unsqueeze(0);
  const at::Tensor inactive = vae_.encode(video * (1 - generated)).to(at::kFloat);
  const at::Tensor reactive = vae_.encode(video * generated).to(at::kFloat);
  // Each reference a 1-frame video, its generated half zero, in front.
  std::vector<at::Tensor> latent;
  for (const at::Tensor& r : references) {
    if (r.dim() != 3 || r.size(0) != 3 || r.size(1) != frames.size(2) || r.size(2) != frames.size(3))
      throw Error(concat("VACE: reference ", r.sizes(), " is not [3, ", frames.size(2), ", ", frames.size(3), "]"));
    const at::Tensor ref = vae_.encode(r.to(device_, at::kFloat).unsqueeze(1)).to(at::kFloat);
    latent.push_back(at::cat({ref, at::zeros_like(ref)}));
  }
  latent.push_back(at::cat({inactive, reactive}));
  return at::cat({at::cat(latent, 1), vace_mask_latent(m, static_cast<int64_t>(references.size()))});
}

// The s.frames frames of a video VaceVideoProcessor reads (spread over its
// duration), resized to cover s.width x s.height and center-cropped:
// [3, s.frames, s.height, s.width] in [-1, 1].
at::Tensor WanGenerator::source_video(const std::string& path, const GenerationSettings& s) const {
  return read_frames(path, vace_frame_ids(index_video(path, s.video_fps).times, s.frames), s);
}

// Frames `ids` of a video, resized to cover s.width x s.height and
// center-cropped (vace_resize_crop).
at::Tensor WanGenerator::read_frames(const std::string& path, const std::vector<int64_t>& ids, const GenerationSettings& s) const {
  std::vector<at::Tensor> rgb;
  for (const Image& img : read_video_frames(path, ids))
    rgb.push_back(at::from_blob(const_cast<uint8_t*>(img.rgb.data()), {img.height, img.width, 3}, at::kByte).clone());
  return vace_resize_crop(at::stack(rgb), s.height, s.width);
}

// A VACE generation's frames, mask and references as prepare_source reads
// them: the source video's frames (VaceVideoProcessor), or zeros to
// generate everything; its mask video's first channel as (u / 127.5 - 1 +
// 1) / 2, or ones; references fitted to the frame size.
at::Tensor WanGenerator::vace_context(const GenerationSettings& s) const {
  at::Tensor frames, mask;
  if (s.video.empty()) {
    frames = at::zeros({3, s.frames, s.height, s.width});
    mask = at::ones({s.frames, s.height, s.width});
  } else if (s.keep_frames) {
    // An extension (the official "firstclip" input): the video's last
    // keep_frames frames as they are (mask 0), grey frames (127) after them
    // to generate (mask 1).
    const int64_t keep = s.keep_frames, n = static_cast<int64_t>(index_video(s.video, s.video_fps).times.size());
    std::vector<int64_t> ids;
    for (int64_t i = n - keep; i < n; ++i) ids.push_back(i);
    frames = at::cat({read_frames(s.video, ids, s), at::full({3, s.frames - keep, s.height, s.width}, 127.0).div(127.5).sub(1.0)}, 1);
    mask = at::cat({at::zeros({keep, s.height, s.width}), at::ones({s.frames - keep, s.height, s.width})});
  } else {
    frames = source_video(s.video, s);
    mask = s.mask.empty() ? at::ones({s.frames, s.height, s.width}) : ((source_video(s.mask, s)[0] + 1) / 2).clamp(0, 1);
  }
  std::vector<at::Tensor> references;
  for (const std::string& file : s.references)
    references.push_back(vace_reference(image_to_tensor(read_image(file)).squeeze(1), s.height, s.width));
  return vace_context(frames, mask, references);
}

Conditioning WanGenerator::encode(const GenerationSettings& s) const {
  // Guidance 1 never uses the negative prompt (see sample).
  const bool guided = s.cfg != 1.0 || s.cfg_low_noise != 1.0;
  std::vector<at::Tensor> contexts = encode_texts(guided ? std::vector<std::string>{s.prompt, s.negative}
                                                         : std::vector<std::string>{s.prompt});
  Conditioning c;
  c.tensors["cond"] = contexts[0];
  c.tensors["uncond"] = contexts.back();
  if (takes_first_frame() && !s.image.empty()) {
    const Image img = prepare_first_frame(read_image(s.image), size_multiple(), image_area_);
    if (img.width != s.width || img.height != s.height)
      throw Error(concat(s.image, ": prepared as ", img.width, "x", img.height, ", the settings say ", s.width, "x", s.height));
    c.tensors["first_frame"] = encode_image(image_to_tensor(img));
  }
  if (takes_image_condition()) {
    // The image as TF.to_tensor(pil).sub_(0.5).div_(0.5), [3, H, W]; the
    // video's size (resolve: i2v_output_size) follows it, not cropped.
    const at::Tensor first = image_to_tensor(read_image(s.image)).squeeze(1);
    at::Tensor last;
    if (task_ == "flf2v") last = flf2v_fit_last(image_to_tensor(read_image(s.last_image)).squeeze(1), first.size(2), first.size(1));
    c.tensors["condition"] = image_condition(first, last, s.frames, s.height, s.width);
    if (clip_) c.tensors["image_features"] = encode_clip(last.defined() ? std::vector<at::Tensor>{first, last} : std::vector<at::Tensor>{first});
  }
  const std::vector<at::Tensor> travel = encode_texts(s.travel_prompts);
  for (size_t k = 0; k < travel.size(); ++k) c.tensors[concat("travel_", k)] = travel[k];
  if (takes_vace()) c.tensors["vace_context"] = vace_context(s);
  // Video-to-video (SDEdit): the video's latent, which the noise is mixed into.
  else if (!s.video.empty() && s.strength < 1) c.tensors["video_latent"] = encode_image(source_video(s.video, s)).to(at::kFloat);
  return c;
}

at::Tensor WanGenerator::sample(const at::Tensor& noise, const Conditioning& c, const GenerationSettings& s,
                                const std::function<void(const StepDone&)>& after_step) const {
  const std::unique_ptr<StepCache> cache =
      StepCache::create(parse_cache_spec(s.cache, "cache"), cache_constants_ ? &*cache_constants_ : nullptr, s.steps);
  auto given = [&](const char* name) { return c.has(name) ? c.at(name) : at::Tensor(); };
  SampleInputs inputs;
  inputs.first_frame = given("first_frame");
  inputs.condition = given("condition");
  inputs.image_features = given("image_features");
  inputs.vace_context = given("vace_context");
  inputs.context_scale = s.context_scale;
  inputs.windows = ContextWindows::from_spec(parse_window_spec(s.context_windows, "context_windows"), vae_.config().temporal_stride());
  // Video-to-video (diffusers' get_timesteps): the last int(steps x
  // strength) steps run, from the video's latent noised to the first one's
  // sigma; strength 0 runs none (the video's VAE round trip), strength 1 all
  // from the noise alone (text-to-video).
  for (size_t k = 0; k < s.travel_prompts.size(); ++k) inputs.travel_contexts.push_back(c.at(concat("travel_", k)));
  inputs.travel_starts = s.travel_starts;
  at::Tensor start = noise;
  if (inputs.windows.freenoise) {
    const std::vector<int64_t> from = inputs.windows.freenoise_sources(noise.size(1), s.seed);
    start = noise.index_select(1, at::tensor(from, at::kLong).to(noise.device()));
  }
  if (c.has("video_latent")) {
    inputs.first_step = s.steps - std::min<int64_t>(static_cast<int64_t>(static_cast<double>(s.steps) * s.strength), s.steps);
    const at::Tensor x0 = c.at("video_latent").to(noise.device());
    if (inputs.first_step == s.steps) return x0;
    const double sigma = make_schedule(parse_sampler(s.sampler), s.steps, s.shift).sigmas[static_cast<size_t>(inputs.first_step)];
    start = sigma * start + (1 - sigma) * x0;
  }
  const at::Tensor latent = sample(
      start, c.at("cond"), c.at("uncond"), parse_sampler(s.sampler), s.steps, s.shift, Guidance(s.cfg, s.cfg_low_noise),
      [&](const Step& st) {
        const int passes = st.uncond.defined() ? 2 : 1;
        const int computed = (st.cond_computed ? 1 : 0) + (passes == 2 && st.uncond_computed ? 1 : 0);
        after_step({st.index + 1, passes * st.windows, passes - computed, st.windows});
      },
      inputs, cache.get());
  // VACE's reference frames lead the latent; the video is what follows them.
  return latent.slice(1, static_cast<int64_t>(s.references.size()));
}

}  // namespace kino
