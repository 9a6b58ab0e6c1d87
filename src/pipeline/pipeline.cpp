#include "kino/pipeline.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <thread>

#include "kino/error.h"
#include "loading/layouts.h"
#include "nn/nn.h"
#include "nn/tensors.h"
#include "pipeline/model_registry.h"
#include "pipeline/resolve.h"
#include "request/window_spec.h"

namespace kino {

namespace {

// Bytes of every weight of the model in the run dtype, from the indexes
// load_manifest made (nothing is loaded).
int64_t weight_bytes(const ModelManifest& m, at::ScalarType dtype) {
  int64_t total = 0;
  for (const auto& [component, index] : m.weight_index)
    total += index->floating_elements * static_cast<int64_t>(c10::elementSize(dtype)) + index->fixed_bytes;
  return total;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct Pipeline::State {
  ModelManifest model;
  ModelDescription description;
  std::unique_ptr<VideoModel> impl;
  bool check_memory = false;  // host memory holds the activations (CPU runs)
  int64_t vae_tile = 0;
  CancelHook cancel;
  std::vector<std::string> load_warnings;
};

GenerationSettings resolve_request(const GenerationRequest& request, const ModelManifest& model, bool strict) {
  return resolve_request(request, model.defaults, describe_model(model), strict);
}

Pipeline::Pipeline(const ModelManifest& model, const RuntimeOptions& runtime) : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.model = model;
  const ModelEntry& entry = find_model(model);  // before anything is loaded
  st.description = entry.describe(model);
  const int threads = runtime.threads > 0 ? runtime.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  LoadOptions load;
  load.device = parse_device(runtime.device);
  // "auto": bf16 on a GPU (as the official Wan code runs), float32 on a CPU.
  load.dtype = runtime.dtype == "auto" ? (load.device.is_cuda() ? at::kBFloat16 : at::kFloat) : parse_dtype(runtime.dtype);
  load.random_weights = runtime.random_weights;
  if (!runtime.random_encoding.empty()) {
    load.random_encoding = dtype_named(runtime.random_encoding);
    if (!load.random_encoding || !is_quantised(*load.random_encoding))
      throw Error(concat("unknown weight encoding '", runtime.random_encoding, "' (Q4_0 ... Q6_K, F8_E4M3, F8_E5M2)"));
  }
  load.keep_experts_on_device = runtime.keep_experts_on_device;
  load.offload_blocks = runtime.offload_blocks && load.device.is_cuda();
  if (runtime.offload_blocks && !load.offload_blocks)
    st.load_warnings.push_back("--offload blocks streams weights to a GPU; on the CPU they are in host memory already");
  MemoryModel& memory = st.description.memory;
  if (!runtime.random_weights) {
    // Loading goes through host memory whatever the device: refuse before it.
    memory.weight_bytes = weight_bytes(model, load.dtype);
    const int64_t available = available_memory_bytes();
    if (available >= 0 && memory.weight_bytes > available)
      throw Error(concat(model.path, ": the weights need ", format_gb(memory.weight_bytes), " of memory in ",
                         c10::toString(load.dtype), ", ", format_gb(available), " are available: use a smaller --dtype"));
  }
  const int64_t s = memory.vae_spatial;
  if (runtime.vae_tile != 0 && (runtime.vae_tile < 2 * s || runtime.vae_tile % s))
    throw Error(concat("--vae-tile ", runtime.vae_tile, ": must be 0 (whole frames) or a multiple of ", s, " from ", 2 * s));
  st.vae_tile = memory.vae_tile = runtime.vae_tile;
  memory.fused_attention = nn::kFusedAttention;
  st.check_memory = load.device.is_cpu();
  st.impl = entry.create(model, load);
}

Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

const ModelManifest& Pipeline::model() const { return state_->model; }
const ModelDescription& Pipeline::description() const { return state_->description; }
const std::vector<std::string>& Pipeline::load_warnings() const { return state_->load_warnings; }
void Pipeline::set_cancel_hook(CancelHook hook) { state_->cancel = std::move(hook); }
bool Pipeline::cancelled() const { return state_->cancel && state_->cancel(); }

GenerationSettings Pipeline::resolve(const GenerationRequest& r, bool strict) const {
  const State& st = *state_;
  GenerationSettings s = resolve_request(r, st.model.defaults, st.description, strict);
  for (const auto& [what, text] : {std::pair<const char*, const std::string&>{"prompt", s.prompt}, {"negative prompt", s.negative}})
    if (st.impl->truncates(text))
      s.warnings.push_back(concat("the ", what, " is longer than the text encoder's ", st.description.text_len,
                                  " tokens; the rest is ignored"));
  if (st.check_memory)
    check_fits(st.description.memory,
               MemoryRequest{s.width, s.height, s.frames, s.cfg != 1.0 || s.cfg_low_noise != 1.0,
                             parse_window_spec(s.context_windows, "context_windows").length},
               available_memory_bytes(), st.description.frame_multiple, st.description.size_multiple);
  return s;
}

Video Pipeline::generate(const GenerationSettings& s, const ProgressCallback& progress, StageTimes* times) {
  const VideoModel& model = *state_->impl;
  auto check_stop = [&] {
    if (cancelled()) throw Interrupted();
  };
  auto report = [&](const char* stage, int64_t step = 0, int64_t steps = 0) {
    if (progress) progress(Progress{stage, step, steps});
  };
  StageTimes local;
  StageTimes& tm = times ? *times : local;

  check_stop();
  report("encode");
  auto t0 = std::chrono::steady_clock::now();
  const Conditioning conditioning = model.encode(s);
  model.synchronize();
  model.release_cached_memory();  // the encoders' GPU copies
  tm.text_s = seconds_since(t0);

  check_stop();
  report("denoise", 0, s.steps);
  t0 = std::chrono::steady_clock::now();
  const at::Tensor noise = seeded_noise(s.seed, model.latent_shape(s));
  tm.transformer_passes = tm.reused_passes = 0;
  tm.context_windows = 1;
  const at::Tensor latent = model.sample(noise, conditioning, s, [&](const StepDone& done) {
    tm.transformer_passes += done.passes;
    tm.reused_passes += done.reused;
    tm.context_windows = std::max<int64_t>(tm.context_windows, done.windows);
    report("denoise", done.step, s.steps);
    check_stop();
  });
  model.synchronize();
  tm.denoise_s = seconds_since(t0);
  model.release_cached_memory();  // the transformer's activations, before the VAE's

  report("decode");
  t0 = std::chrono::steady_clock::now();
  const at::Tensor frames = video_to_uint8(model.decode(latent, state_->vae_tile));
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
