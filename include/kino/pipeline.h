// Text-to-video generation, torch-free interface (what the CLI uses).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kino/manifest.h"
#include "kino/memory_budget.h"

namespace kino {

// What the user asked for; unset fields take the model's defaults.
struct GenerationRequest {
  std::string prompt;
  std::optional<std::string> negative;  // empty or unset: the model's default negative prompt
  std::optional<uint64_t> seed;         // unset: a random seed (reported back)
  std::optional<int64_t> steps, width, height, frames;
  std::optional<double> cfg, shift, fps;
  std::optional<double> cfg_low_noise;  // two-expert models; unset: the model's, or cfg when cfg is given
  std::optional<std::string> sampler;
  std::optional<double> seconds;       // duration; frames = seconds * fps, rounded to a valid count
  std::optional<std::string> aspect;   // "16:9", "9:16", "1:1", ...: the model's nearest size
  std::optional<std::string> image;    // a first frame to animate (Wan2.2 TI2V); the size follows it
};

// A request resolved against the model's defaults and validated.
struct GenerationSettings {
  std::string prompt, negative, sampler;
  std::string image;  // the first frame's file, "" for text-to-video
  uint64_t seed = 0;
  int64_t steps = 0, width = 0, height = 0, frames = 0;
  double cfg = 0, shift = 0, fps = 0;
  double cfg_low_noise = 0;  // the low-noise expert's scale; equal to cfg for one-transformer models
  std::vector<std::string> warnings;  // values rounded to what the model takes
};

struct Video {
  int64_t frames = 0, width = 0, height = 0;
  double fps = 0;
  std::vector<uint8_t> rgb;  // frames * height * width * 3, RGB24
};

struct StageTimes {
  double text_s = 0, denoise_s = 0, decode_s = 0;
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
  // device, instead of the idle one in host memory (WanT2V::IdleExpert).
  bool keep_experts_on_device = false;
};

// Called at every stage change and sampler step (step counts from 1).
struct Progress {
  std::string stage;
  int64_t step = 0, steps = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;

// Stop generation at the next step boundary (safe from a signal handler);
// generate() then throws kino::Interrupted.
void request_stop();
bool stop_requested();

class WanT2V;

class Pipeline {
 public:
  Pipeline(const ModelManifest& model, const RuntimeOptions& runtime);
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  ~Pipeline();

  // Fills defaults and validates. Sizes and frame counts the model cannot
  // take are rounded to the nearest valid ones (with a warning), or refused
  // when `strict`; impossible values are always refused, and so are requests
  // that would not fit in the available memory (see memory_budget.h).
  GenerationSettings resolve(const GenerationRequest& request, bool strict = false) const;
  Video generate(const GenerationSettings& settings, const ProgressCallback& progress = {},
                 StageTimes* times = nullptr);
  const ModelManifest& model() const { return model_; }

 private:
  ModelManifest model_;
  MemoryModel memory_;
  bool check_memory_ = false;  // host memory holds the activations (CPU runs)
  int64_t vae_tile_ = 0;
  std::unique_ptr<WanT2V> impl_;
};

}  // namespace kino
