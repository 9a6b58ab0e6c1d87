// The Wan text-to-video pipeline at the tensor level (wan/text2video.py
// WanT2V.generate): text -> contexts, seeded noise, sampling loop with
// classifier-free guidance, VAE decode.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kino/image.h"
#include "kino/manifest.h"
#include "kino/pipeline.h"
#include "kino/sampler.h"
#include "kino/tokenizer.h"
#include "kino/umt5.h"
#include "kino/wan_dit.h"
#include "kino/wan_vae.h"

namespace kino {

// Component configs from a manifest (fields left out take the Wan2.1 values).
UMT5Config umt5_config(const ModelManifest& m);
WanDiTConfig dit_config(const ModelManifest& m, bool low_noise = false);
WanVAEConfig vae_config(const ModelManifest& m);

// "auto" (cuda when this build and machine have it), "cpu", "cuda", "cuda:N";
// kino::Error for anything else, or cuda without CUDA.
at::Device parse_device(const std::string& s);
// float32/fp32, bfloat16/bf16, float16/fp16; kino::Error otherwise.
at::ScalarType parse_dtype(const std::string& s);

// torch.manual_seed(seed); torch.randn(shape) on the CPU, in float32.
at::Tensor seeded_noise(uint64_t seed, at::IntArrayRef shape);
// video [3, F, H, W] in [-1, 1] -> RGB24 [F, H, W, 3]: round(clamp((x+1)/2, 0, 1) * 255).
at::Tensor video_to_uint8(const at::Tensor& video);
// An RGB24 image -> [3, 1, H, W] in [-1, 1]: (x / 255 - 0.5) / 0.5, float32
// (textimage2video.py's image tensor).
at::Tensor image_to_tensor(const Image& image);

// Classifier-free guidance scale; a two-expert model (Wan2.2 A14B) guides
// its low-noise expert with `low_noise` (one number: the same for both, as
// the official code takes a single float).
struct Guidance {
  Guidance(double s) : scale(s), low_noise(s) {}  // NOLINT: a plain number is a Guidance
  Guidance(double s, double low) : scale(s), low_noise(low) {}
  double scale, low_noise;
};

class WanT2V {
 public:
  struct Step {
    int64_t index;
    at::Tensor cond, uncond, guided, latent;  // velocities and the latent after the step
    bool low_noise_expert = false;            // which transformer ran (two-expert models)
    double guidance = 0;                      // the scale it was guided with
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
  WanT2V(const ModelManifest& model, at::Device device, at::ScalarType dtype, bool random_weights = false,
         IdleExpert idle_expert = IdleExpert::Host);

  // Trimmed umT5 outputs, one per prompt: [valid tokens, dim] each.
  std::vector<at::Tensor> encode_texts(const std::vector<std::string>& prompts) const;
  at::Tensor encode_text(const std::string& prompt) const { return encode_texts({prompt})[0]; }
  // Whether the text encoder would cut `text` to its text_len() tokens.
  bool truncates(const std::string& text) const { return tokenizer_.encode(text, text_len()).truncated; }
  // Latent shape for a video size: [z, (F-1)/4 + 1, H/8, W/8].
  std::vector<int64_t> latent_shape(int64_t frames, int64_t height, int64_t width) const;
  // The denoising loop from `noise`; returns the final latent.
  // Two-expert models switch to the low-noise transformer at the first step
  // whose timestep is below boundary_ratio * 1000 (text2video.py), with one
  // scheduler (and its multistep history) across the switch.
  // `first_frame` (Wan2.2 TI2V image-to-video, textimage2video.py): the
  // normalised latent [z, 1, h, w] of an image, which is latent frame 0
  // throughout: written over the noise, given timestep 0 in the DiT, and
  // written back after every step.
  at::Tensor sample(const at::Tensor& noise, const at::Tensor& cond, const at::Tensor& uncond, SamplerKind sampler,
                    int64_t steps, double shift, Guidance cfg, const StepObserver& observer = {},
                    const at::Tensor& first_frame = {}) const;
  // Whether the model animates a first frame (sample's first_frame): Wan2.2
  // TI2V, whose DiT takes per-token timesteps with the Wan2.2 VAE.
  bool takes_first_frame() const;
  // image [3, 1, H, W] in [-1, 1] -> normalised latent [z, 1, H/s, W/s].
  at::Tensor encode_image(const at::Tensor& image) const;
  // Clamped video [3, F, H, W]; `tile`: see WanVAE::decode_raw.
  at::Tensor decode(const at::Tensor& latent, int64_t tile = 0) const;
  // Waits for the device's queued work (stage timings on a GPU).
  void synchronize() const;
  // Returns the GPU memory cached by freed tensors to the driver, so that the
  // next stage's peak is its own (as the official code's offloading does).
  void release_cached_memory() const;

  int64_t text_len() const { return dit_.config().text_len; }
  int64_t frame_multiple() const { return vae_.config().temporal_stride(); }
  int64_t size_multiple() const;
  const UMT5Encoder& text_encoder() const { return t5_; }
  const WanDiT& transformer() const { return dit_; }
  bool has_low_noise_expert() const { return dit_low_.has_value(); }
  const WanVAE& vae() const { return vae_; }

 private:
  WanT2V(const ModelManifest& model, at::Device device, at::ScalarType dtype,
         const std::optional<at::TensorOptions>& random_weights, IdleExpert idle_expert);

  at::Device device_;
  at::Device text_home_;  // where the text encoder's weights live between encodes
  Tokenizer tokenizer_;
  UMT5Encoder t5_;
  WanDiT dit_;
  std::optional<WanDiT> dit_low_;  // Wan2.2 A14B's low-noise expert
  double boundary_ = 0;            // its boundary timestep
  WanVAE vae_;
  at::Device expert_home_;  // where the transformers' weights live between their steps (IdleExpert)
};

}  // namespace kino
