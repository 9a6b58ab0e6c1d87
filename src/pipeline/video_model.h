// The interface between Pipeline and a model family's generator: what
// Pipeline asks of every model, whatever its architecture. A family
// implements it once (src/wan/generator.h) and registers a factory per task
// (model_registry.h); Pipeline orchestrates encode -> seeded noise -> sample
// -> decode and knows nothing else of the model.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kino/model.h"
#include "kino/request.h"
#include "loading/tensor_file.h"

namespace kino {

// How a model is loaded.
struct LoadOptions {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  // Random weights of the manifest's shapes, made on the device (benchmarks).
  bool random_weights = false;
  // With random weights: the transformer blocks' matrices in this stored
  // encoding (Q8_0, Q4_K, F8_E4M3, ...) instead of the run dtype.
  std::optional<DType> random_encoding;
  // Two-expert models on a GPU: the idle expert stays on the device too.
  bool keep_experts_on_device = false;
  // On a GPU: the transformers' blocks stream from host memory (WanDiT::stream_blocks).
  bool offload_blocks = false;
};

// A generation's conditioning as the model encoded it: text contexts and
// whatever its conditioning encoders made (an image's latent, ...), by name.
struct Conditioning {
  std::map<std::string, at::Tensor> tensors;
  const at::Tensor& at(const std::string& name) const { return tensors.at(name); }
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
};

// A finished denoising step: its number (from 1), the transformer passes
// it made and how many of them a step cache served.
struct StepDone {
  int64_t step = 0;
  int passes = 0, reused = 0;
  int windows = 1;  // context windows the step ran
};

class VideoModel {
 public:
  virtual ~VideoModel() = default;

  // Whether the text encoder would cut `text` (a warning when resolving).
  virtual bool truncates(const std::string& text) const = 0;
  // The prompt (and, when guided, the negative prompt) and the conditioning
  // inputs of `s` (its image, ...), encoded.
  virtual Conditioning encode(const GenerationSettings& s) const = 0;
  // The shape of the initial noise for `s`: seeded_noise(s.seed, shape).
  virtual std::vector<int64_t> latent_shape(const GenerationSettings& s) const = 0;
  // The denoising loop from `noise`; `after_step` after each step, where a
  // callback may throw to stop. Returns the final latent.
  virtual at::Tensor sample(const at::Tensor& noise, const Conditioning& c, const GenerationSettings& s,
                            const std::function<void(const StepDone&)>& after_step) const = 0;
  // latent -> video [3, F, H, W] in [-1, 1]; `tile`: spatial decode tiles in
  // pixels (0: whole frames).
  virtual at::Tensor decode(const at::Tensor& latent, int64_t tile) const = 0;

  // Waits for the device's queued work (stage timings on a GPU).
  virtual void synchronize() const {}
  // Returns memory cached by freed tensors to the device, between stages.
  virtual void release_cached_memory() const {}
};

}  // namespace kino
