// Generation from a model: load it once, resolve requests against it and
// generate videos. Torch-free interface (what the CLI and the app layer use).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kino/manifest.h"
#include "kino/model.h"
#include "kino/request.h"
#include "kino/video.h"

namespace kino {

struct StageTimes {
  double text_s = 0, denoise_s = 0, decode_s = 0;
  // Transformer passes of the denoising, and how many a step cache served.
  int64_t transformer_passes = 0, reused_passes = 0;
  int64_t context_windows = 1;  // windows per step (the most of any step)
};

struct RuntimeOptions {
  std::string device = "auto";  // "auto" (cuda when there is one), "cpu", "cuda", "cuda:N"
  std::string dtype = "auto";   // "auto" (bfloat16 on cuda, float32 on cpu), "float32", "bfloat16", "float16"
  int threads = 0;             // 0: all cores
  // Benchmarks: random weights of the manifest's shapes, made on the device;
  // the weight files are not read.
  bool random_weights = false;
  // Decode in overlapping spatial tiles of this many pixels (0: whole frames),
  // so that decoding memory does not grow with the frame size.
  int64_t vae_tile = 0;
  // Two-expert models (Wan2.2 A14B) on a GPU: keep both transformers on the
  // device, instead of the idle one in host memory.
  bool keep_experts_on_device = false;
  // On a GPU: the transformer blocks' matrices wait in pinned host memory and
  // stream to the device one block ahead of use (`--offload blocks`).
  bool offload_blocks = false;
  // With random weights: the transformer blocks' matrices in this GGUF or
  // fp8 encoding ("Q8_0", "Q4_K", "F8_E4M3", ...; "" = the run dtype).
  std::string random_encoding;
};

// Called at every stage change and sampler step (step counts from 1).
struct Progress {
  std::string stage;
  int64_t step = 0, steps = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;
// Asked at every stage and step boundary: true stops the generation, which
// then throws kino::Interrupted (a signal handler may set what it reads).
using CancelHook = std::function<bool()>;

// A request resolved against a model's manifest alone (no weights loaded):
// what Pipeline::resolve gives but for the warnings that need the
// tokenizer and the memory check. Fills defaults and validates; sizes and
// frame counts the model cannot take are rounded to the nearest valid
// ones (with a warning), or refused when `strict`.
GenerationSettings resolve_request(const GenerationRequest& request, const ModelManifest& model, bool strict = false);

class Pipeline {
 public:
  // Finds the manifest's family and task (kino::Error if none is
  // registered), checks that the weights fit in memory, then loads them.
  Pipeline(const ModelManifest& model, const RuntimeOptions& runtime);
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  ~Pipeline();

  // resolve_request, plus a warning for prompts the text encoder cuts, and
  // (on a CPU) a refusal of requests that would not fit in the available
  // memory (see memory_budget.h).
  GenerationSettings resolve(const GenerationRequest& request, bool strict = false) const;
  Video generate(const GenerationSettings& settings, const ProgressCallback& progress = {},
                 StageTimes* times = nullptr);
  // Replaces the cancel hook (default: never cancelled).
  void set_cancel_hook(CancelHook hook);
  bool cancelled() const;

  const ModelManifest& model() const;
  const ModelDescription& description() const;
  // Runtime options the load could not honour, one line each.
  const std::vector<std::string>& load_warnings() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kino
