// kino-train's shared pieces: captions left partial, the loss log's plot, training clips, optimiser helpers, checkpoints, run records.
#include "train/tiny.h"

namespace kino::tiny {

world::Omit draw_omit(const Options& o, std::mt19937& rng) {
  if (o.partial_captions <= 0) return world::Omit::Nothing;
  std::uniform_real_distribution<double> u01(0, 1);
  if (u01(rng) >= o.partial_captions) return world::Omit::Nothing;
  return u01(rng) < 0.5 ? world::Omit::Color : world::Omit::Shape;
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void plot_losses(const LossLog& log, const std::string& path) {
  const int W = 640, H = 240 * static_cast<int>(log.series.size());
  std::vector<uint8_t> img(static_cast<size_t>(W * H * 3), 255);
  auto put = [&](int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t* p = &img[(static_cast<size_t>(y) * W + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  };
  for (size_t k = 0; k < log.series.size(); ++k) {
    const auto& v = log.series[k].second;
    std::vector<float> smooth(v.size());
    float acc = v.empty() ? 0 : v[0];
    for (size_t i = 0; i < v.size(); ++i) smooth[i] = acc = 0.95f * acc + 0.05f * v[i];
    float lo = 1e30f, hi = -1e30f;
    for (float x : v) lo = std::min(lo, std::log10(std::max(x, 1e-8f))), hi = std::max(hi, std::log10(std::max(x, 1e-8f)));
    const int top = static_cast<int>(k) * 240 + 10, height = 220;
    for (int x = 40; x < W - 10; ++x) put(x, top + height, 0, 0, 0);
    for (int y = top; y <= top + height; ++y) put(40, y, 0, 0, 0);
    for (size_t i = 0; i < v.size(); ++i) {
      const int x = 40 + static_cast<int>((W - 60) * i / std::max<size_t>(1, v.size() - 1));
      auto yof = [&](float val) {
        return top + height - static_cast<int>(height * (std::log10(std::max(val, 1e-8f)) - lo) / std::max(1e-6f, hi - lo));
      };
      put(x, yof(v[i]), 170, 190, 230);
      put(x, yof(smooth[i]), 200, 30, 30);
      put(x, yof(smooth[i]) + 1, 200, 30, 30);
    }
  }
  write_png(path, img.data(), W, H);
}

std::array<int64_t, 5> scene_attributes(const world::Scene& s) {
  return {s.color, s.background, static_cast<int64_t>(s.shape), s.large, static_cast<int64_t>(s.motion)};
}

at::Tensor render_batch(std::mt19937& rng, at::Device device, int batch, int size, int frames, int crop,
                        std::vector<world::Scene>* scenes, bool still) {
  std::vector<at::Tensor> clips;
  for (int b = 0; b < batch; ++b) {
    world::Scene s = world::random_scene(rng, false);
    if (still) s.motion = world::Motion::Still;
    at::Tensor t = render_clip(s, size, frames);
    if (crop > 0) {
      std::uniform_int_distribution<int> d(0, size - crop);
      const int oy = d(rng), ox = d(rng);
      t = t.slice(2, oy, oy + crop).slice(3, ox, ox + crop).contiguous();
    }
    clips.push_back(t);
    if (scenes) scenes->push_back(s);
  }
  return at::stack(clips).to(device);
}

void set_lr(torch::optim::AdamW& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

void save(const std::string& path, const std::map<std::string, at::Tensor>& params, const std::string& component) {
  std::vector<at::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : params) {
    keep.push_back(t.detach().to(at::kCPU, at::kFloat).contiguous());
    out.push_back({name, DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
  }
  write_safetensors(path, out, {{"component", component}, {"trained_by", "kino-train"}});
}

void clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard ng;
  std::vector<at::Tensor> squares;
  for (const auto& p : params)
    if (p.grad().defined()) squares.push_back(p.grad().pow(2).sum());
  const double norm = std::sqrt(at::stack(squares).sum().item<double>());
  if (norm > max_norm)
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(max_norm / (norm + 1e-6));
}

std::vector<at::Tensor> values(const std::map<std::string, at::Tensor>& m) {
  std::vector<at::Tensor> v;
  for (const auto& kv : m) v.push_back(kv.second);
  return v;
}

float tail_mean(const LossLog& log) {
  const auto& l = log.series.back().second;
  const size_t n = std::min<size_t>(100, l.size());
  float m = 0;
  for (size_t i = l.size() - n; i < l.size(); ++i) m += l[i] / n;
  return m;
}

Json manifest_json(const Options& o, const UMT5Config& tcfg, const WanDiTConfig& dcfg, const WanVAEConfig& vcfg) {
  GenerationDefaults defaults;
  defaults.sampler = o.sampler;
  defaults.steps = o.sample_steps;
  defaults.cfg = o.cfg;
  defaults.shift = o.shift;
  defaults.width = defaults.height = o.size;
  defaults.frames = o.frames;
  defaults.fps = 8;
  defaults.negative_prompt = "";
  return {
      {"kino_manifest", 1},
      {"name", "kino-tiny"},
      {"family", "wan2.1"},
      {"task", "t2v"},
      {"description", "kino's embedded default: the Wan2.1 architecture at tiny size, trained by kino-train on a synthetic world of flat shapes"},
      {"tokenizer", "tokenizer.model"},
      {"text_encoder", {{"weights", "text_encoder.safetensors"}, {"config", tcfg.to_json()}}},
      {"transformer", {{"weights", "transformer.safetensors"}, {"config", dcfg.to_json()}}},
      {"vae", {{"weights", "vae.safetensors"}, {"config", vcfg.to_json()}}},
      {"trained_frames", o.frames},  // longer clips run in context windows
      {"defaults", defaults_json(defaults)}};
}

Json run_record(const std::string& run, const Options& o, at::Device device) {
  return {{"run", run}, {"seed", o.seed}, {"threads", at::get_num_threads()}, {"device", device.str()}};
}

int next_run(const std::string& folder, const std::string& prefix) {
  int last = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    int n = 0;
    if (name.rfind(prefix, 0) == 0 && std::sscanf(name.c_str() + prefix.size(), "%d_", &n) == 1) last = std::max(last, n);
  }
  return last + 1;
}

}  // namespace kino::tiny
