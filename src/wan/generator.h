// The Wan generator (wan/text2video.py WanGenerator, wan/textimage2video.py
// WanTI2V): text -> contexts, seeded noise, the sampling loop with
// classifier-free guidance (and Wan2.2 A14B's two experts, TI2V's first
// frame), VAE decode. One class for the wan2.1 and wan2.2 families' tasks
// (t2v, ti2v), registered per task in registration.cpp; the tensor-level
// methods are what the parity tests drive, the VideoModel ones what
// Pipeline calls.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>

#include "kino/manifest.h"
#include "nn/tensors.h"
#include "pipeline/video_model.h"
#include "sampling/sampler.h"
#include "text/tokenizer.h"
#include "text/umt5.h"
#include "wan/clip.h"
#include "wan/configs.h"
#include "sampling/context_windows.h"
#include "sampling/step_cache.h"
#include "wan/dit.h"
#include "wan/vae.h"

namespace kino {

// Classifier-free guidance scale; a two-expert model (Wan2.2 A14B) guides
// its low-noise expert with `low_noise` (one number: the same for both, as
// the official code takes a single float).
struct Guidance {
  Guidance(double s) : scale(s), low_noise(s) {}  // NOLINT: a plain number is a Guidance
  Guidance(double s, double low) : scale(s), low_noise(low) {}
  double scale, low_noise;
};

// What the transformer reads besides the latent and the text, by kind of
// model (undefined where it takes none); see WanGenerator::sample.
struct SampleInputs {
  at::Tensor first_frame;     // TI2V: the image's latent [z, 1, h, w]
  at::Tensor condition;       // I2V/FLF2V: [4 + z, F', h, w]
  at::Tensor image_features;  // Wan2.1 I2V/FLF2V: CLIP tokens [N, n, C]
  at::Tensor vace_context;    // VACE: [vace_in_dim, F', h, w] (vace_context)
  double context_scale = 1.0; // VACE: the hints' scale
  // Video-to-video: the step the schedule starts at (the noise is then the
  // video's latent noised to that step's sigma).
  int64_t first_step = 0;
  // Clips longer than a window: the DiT runs per window, the velocities blended.
  ContextWindows windows;
  // Prompt travel: per shot, its text context and first latent frame; a
  // window's conditional pass takes the shot holding its middle frame.
  std::vector<at::Tensor> travel_contexts;
  std::vector<int64_t> travel_starts;
};

class WanGenerator final : public VideoModel {
 public:
  struct Step {
    int64_t index;
    at::Tensor cond, uncond, guided, latent;  // velocities and the latent after the step
    bool low_noise_expert = false;            // which transformer ran (two-expert models)
    double guidance = 0;                      // the scale it was guided with
    bool cond_computed = true, uncond_computed = true;  // false: served by the step cache
    int windows = 1;                                    // context windows the transformer ran over
  };
  using StepObserver = std::function<void(const Step&)>;

  // Where a two-expert model's idle transformer waits on a GPU: in host
  // memory (pinned), the active one visiting the GPU, so that only one
  // expert's weights are there at a time (the official code's
  // --offload_model, its single-GPU default; ~2 x 28.6 GB copied per
  // generation of A14B in bf16), or on the device beside the active one.
  enum class IdleExpert { Host, Device };

  // On a GPU the text encoder is kept in host memory and visits the GPU only
  // while it encodes, so that it never shares GPU memory with the denoiser.
  WanGenerator(const ModelManifest& model, at::Device device, at::ScalarType dtype, bool random_weights = false,
               IdleExpert idle_expert = IdleExpert::Host);
  WanGenerator(const ModelManifest& model, const LoadOptions& options);

  // Trimmed umT5 outputs, one per prompt: [valid tokens, dim] each.
  std::vector<at::Tensor> encode_texts(const std::vector<std::string>& prompts) const;
  at::Tensor encode_text(const std::string& prompt) const { return encode_texts({prompt})[0]; }
  // Latent shape for a video size: [z, (F-1)/4 + 1, H/8, W/8].
  std::vector<int64_t> latent_shape(int64_t frames, int64_t height, int64_t width) const;
  // The denoising loop from `noise`; returns the final latent.
  // Two-expert models switch to the low-noise transformer at the first step
  // whose timestep is below boundary_ratio * 1000 (text2video.py), with one
  // scheduler (and its multistep history) across the switch.
  // inputs.first_frame (TI2V image-to-video, textimage2video.py): the
  // normalised latent [z, 1, h, w] of an image, which is latent frame 0
  // throughout: written over the noise, given timestep 0 in the DiT, and
  // written back after every step.
  // inputs.condition (I2V/FLF2V, image_condition): concatenated to the latent
  // as the DiT's input, [20, F', h, w]; inputs.image_features (Wan2.1
  // I2V/FLF2V, encode_clip): the CLIP tokens of the image(s), [N, n, C].
  // inputs.vace_context (VACE, vace_context): what the VACE blocks read at
  // every step, with the hints scaled by inputs.context_scale. The
  // unconditional pass gets all of them as well: only the text differs.
  at::Tensor sample(const at::Tensor& noise, const at::Tensor& cond, const at::Tensor& uncond, SamplerKind sampler,
                    int64_t steps, double shift, Guidance cfg, const StepObserver& observer = {},
                    const SampleInputs& inputs = {}, StepCache* cache = nullptr) const;
  // Whether the model animates a first frame (sample's first_frame): its
  // task is ti2v.
  bool takes_first_frame() const { return task_ == "ti2v"; }
  // image [3, 1, H, W] in [-1, 1] -> normalised latent [z, 1, H/s, W/s].
  at::Tensor encode_image(const at::Tensor& image) const;
  // Whether the model continues an image through a condition (i2v, flf2v).
  bool takes_image_condition() const { return task_ == "i2v" || task_ == "flf2v"; }
  // I2V/FLF2V: cat(mask, VAE latent of the known frames) [20, F', h/8, w/8]
  // for a video of `frames` x h x w from `first` (and `last`, FLF2V),
  // [3, H, W] in [-1, 1] each (i2v_inputs.h).
  at::Tensor image_condition(const at::Tensor& first, const at::Tensor& last, int64_t frames, int64_t h, int64_t w) const;
  // Whether the model is a VACE model (vace_context).
  bool takes_vace() const { return dit_.config().vace_in_dim > 0; }
  // VACE (vace.py vace_encode_frames, vace_encode_masks, vace_latent): the
  // context of `frames` [3, T, H, W] in [-1, 1], `mask` [T, H, W] in [0, 1]
  // (1: generate) and reference images [3, H, W] each (prepared to the frame
  // size: vace_inputs.h), [96, refs + F', H/8, W/8].
  at::Tensor vace_context(const at::Tensor& frames, const at::Tensor& mask, const std::vector<at::Tensor>& references) const;
  // Wan2.1 I2V/FLF2V: CLIP features of the original images, [N, n, C].
  at::Tensor encode_clip(const std::vector<at::Tensor>& images, Trace* trace = nullptr) const;
  // Clamped video [3, F, H, W]; `tile`: see WanVAE::decode_raw.
  at::Tensor decode(const at::Tensor& latent, int64_t tile = 0) const override;

  // Widths and heights are multiples of this (VAE stride x patch).
  int64_t size_multiple() const { return vae_.config().spatial_stride() * dit_.config().patch_size[1]; }
  bool has_low_noise_expert() const { return dit_low_.has_value(); }
  const WanDiT& transformer() const { return dit_; }
  const WanVAE& vae() const { return vae_; }

  // VideoModel.
  bool truncates(const std::string& text) const override { return tokenizer_.encode(text, text_len()).truncated; }
  Conditioning encode(const GenerationSettings& s) const override;
  // VACE's reference images add one latent frame each, in front.
  std::vector<int64_t> latent_shape(const GenerationSettings& s) const override {
    std::vector<int64_t> shape = latent_shape(s.frames, s.height, s.width);
    shape[1] += static_cast<int64_t>(s.references.size());
    return shape;
  }
  at::Tensor sample(const at::Tensor& noise, const Conditioning& c, const GenerationSettings& s,
                    const std::function<void(const StepDone&)>& after_step) const override;
  void synchronize() const override;
  void release_cached_memory() const override;

 private:
  int64_t text_len() const { return dit_.config().text_len; }
  at::Tensor vace_context(const GenerationSettings& s) const;
  at::Tensor source_video(const std::string& path, const GenerationSettings& s) const;
  at::Tensor read_frames(const std::string& path, const std::vector<int64_t>& ids, const GenerationSettings& s) const;
  std::vector<at::Tensor> windowed_passes(const WanDiT& dit, const ContextWindows& windows, int64_t step, double t,
                                          const at::Tensor& x, const std::vector<at::Tensor>& contexts, bool first_frame,
                                          const std::vector<at::Tensor>& image, const SampleInputs& inputs, Step& report) const;
  std::vector<at::Tensor> cached_passes(const WanDiT& dit, StepCache& cache, int64_t step, double t, const at::Tensor& latent,
                                        const at::Tensor& x, const std::vector<at::Tensor>& contexts, int64_t seq_len,
                                        const std::vector<double>& first_t, const std::vector<at::Tensor>& image,
                                        const VaceInput* vace, Step& report) const;

  std::string task_;
  std::optional<CacheConstants> cache_constants_;  // the step caches' (TeaCache, MagCache)
  int64_t image_area_;  // TI2V: the pixel count images are fit to (the default size's)
  at::Device device_;
  at::Device text_home_;  // where the text encoder's weights live between encodes
  Tokenizer tokenizer_;
  UMT5Encoder t5_;
  WanDiT dit_;
  std::optional<WanDiT> dit_low_;  // Wan2.2 A14B's low-noise expert
  std::optional<ClipVision> clip_;  // Wan2.1 I2V/FLF2V's image encoder
  double boundary_ = 0;            // its boundary timestep
  WanVAE vae_;
  at::Device expert_home_;  // where the transformers' weights live between their steps (IdleExpert)
};

}  // namespace kino
