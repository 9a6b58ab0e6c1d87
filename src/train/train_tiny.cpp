// kino-train: trains kino-tiny from scratch on the synthetic world with the
// same modules the pipeline runs (umT5 encoder, Wan DiT, Wan VAE), and
// evaluates prompt following from pixels.
//
//   kino-train train   --out models/kino-tiny
//   kino-train decoder --model build/kino-tiny
//   kino-train eval  --model models/kino-tiny --per-group 48
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/optim/adamw.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>

#include "kino/error.h"
#include "world/evaluate.h"
#include "loading/tensor_file.h"
#include "train/training.h"
#include "text/tokenizer.h"
#include "text/umt5.h"
#include "kino/atomic_file.h"
#include "kino/video_writer.h"
#include "wan/dit.h"
#include "request/settings.h"
#include "wan/generator.h"
#include "wan/vae.h"
#include "world/world.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace kino;
using namespace kino::train;

namespace {

struct Options {
  std::string out = "models/kino-tiny";
  std::string work;  // the latent cache and the tokenizer corpus; default <out>/.train
  std::string device = "auto";  // cpu, cuda, cuda:N or auto (cuda when there is one)
  uint64_t seed = 20261122;
  int threads = 0;
  int size = 128, frames = 17;
  // The defaults are the first run of the shipped weights' recipe (see
  // scripts/train-tiny.sh and models/kino-tiny/TRAINING.md for the rest).
  int vae_steps = 1000, vae_batch = 8, vae_crop = 64, vae_dim = 16;
  int vae_consistency_steps = 100, vae_decoder_steps = 150;
  double vae_consistency = 0.1;
  train::RecLoss decoder_loss;  // the decoder phase's reconstruction terms (phases 1 and 2: the defaults)
  std::string vae_from;   // a model folder whose VAE finished phase 1
  std::string vae_model;  // a model folder whose finished VAE is used as it is (no VAE training)
  int clips = 1200;
  int dit_steps = 2400, dit_batch = 16, dit_dim = 128, dit_layers = 4, dit_heads = 4, dit_ffn = 256;
  int dit_patch = 2;  // spatial patch: 2 gives a 128-pixel frame 8x8 tokens, 1 gives 16x16
  int t5_dim = 64, t5_layers = 2, t5_heads = 4, t5_ffn = 128, vocab = 400, text_len = 32;
  int text_steps = 6000, text_batch = 64;
  double lr = 4e-3, ema = 0.998, vae_lr = 1e-3, text_lr = 2e-3;
  double dit_object_weight = 4;  // loss weight of latent cells that hold the object (train_flow); 1: plain MSE
  double dit_outline_weight = 0;  // extra loss weight of the cells along the object's outline (outline_band)
  double partial_captions = 0;   // share of training captions that leave out the colour or the shape (world::Omit)
  double sigma_max = 1;          // the DiT trains on sigmas below this only (a low-noise expert: its boundary)
  int checkpoint_every = 250;
  bool resume = false;
  // Sampling defaults written to the manifest (chosen by `kino-train eval`).
  std::string sampler = "unipc";
  int sample_steps = 20;
  double cfg = 4.0, shift = 3.0;
};

// What a training caption leaves out: with probability o.partial_captions the
// colour or the shape (even odds), else nothing. Draws nothing from `rng` when
// partial captions are off, so such runs replay the runs made before the option.
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

// The loss log: CSV rows of stage, step, loss, lr, seconds since start.
struct LossLog {
  std::ofstream csv;
  double start = now_s();
  std::vector<std::pair<std::string, std::vector<float>>> series;
  explicit LossLog(const std::string& path) : csv(path) { csv << "stage,step,loss,lr,seconds\n"; }
  void add(const std::string& stage, int step, float loss, double lr) {
    csv << stage << ',' << step << ',' << loss << ',' << lr << ',' << now_s() - start << '\n';
    if (series.empty() || series.back().first != stage) series.push_back({stage, {}});
    series.back().second.push_back(loss);
  }
};

// A log-scale plot of each stage's loss (moving average), one panel per stage.
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

// A scene's attributes as class indices: colour, background, shape, size
// (1: large), motion (the latent cache's table and the text encoder's labels).
std::array<int64_t, 5> scene_attributes(const world::Scene& s) {
  return {s.color, s.background, static_cast<int64_t>(s.shape), s.large, static_cast<int64_t>(s.motion)};
}

// Clips of random training scenes as [B, 3, F, H, W] in [-1, 1] on `device`. `crop` > 0
// cuts a random crop x crop window of every frame (the VAE is convolutional
// and trains on such crops: same motion, less compute). `still`: scenes
// without motion.
at::Tensor render_batch(std::mt19937& rng, at::Device device, int batch, int size, int frames, int crop,
                        std::vector<world::Scene>* scenes, bool still = false) {
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

// Scales all gradients so that their joint L2 norm is at most max_norm
// (one device synchronisation per call).
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

// The text encoder alone, before the DiT: from the mean of its outputs over
// the caption's tokens, linear heads (training only, not saved) classify the
// scene's object colour, background, shape, size and motion (cross-entropy).
// Real Wan models start from a pretrained umT5; kino-tiny has none, and
// trained jointly with the DiT from scratch its encoder stayed a bag of
// words (measured: "a white square on a gray background" gave a white
// background, and prompts with different colours gave the same clip). The
// heads make every attribute, bound to its role, linearly readable before the
// DiT starts. Returns the accuracy per attribute on captions of the held-out
// combinations.
Json pretrain_text_encoder(const UMT5Encoder& t5, const Weights& tw, const Tokenizer& tokenizer, std::mt19937& rng,
                           LossLog& log, const Options& o, at::Device device) {
  const std::vector<int64_t> classes = {static_cast<int64_t>(world::kObjectColors.size()),
                                        static_cast<int64_t>(world::kBackgrounds.size()),
                                        static_cast<int64_t>(world::kShapeNames.size()), 2,
                                        static_cast<int64_t>(world::kMotionNames.size())};  // as scene_attributes
  const std::array<const char*, 5> names = {"color", "background", "shape", "size", "motion"};
  const int64_t n_logits = std::accumulate(classes.begin(), classes.end(), int64_t{0});
  auto gen = at::detail::createCPUGenerator(o.seed + 4);
  const at::Tensor heads_w = (at::randn({n_logits, o.t5_dim}, gen) / std::sqrt(double(o.t5_dim))).to(device).requires_grad_();
  const at::Tensor heads_b = at::zeros({n_logits}, at::TensorOptions(device)).requires_grad_();
  std::vector<at::Tensor> params = values(tw.parameters());
  params.push_back(heads_w);
  params.push_back(heads_b);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.text_lr).weight_decay(0.01));
  // Logits of a batch of held-out or training captions, one tensor per
  // attribute, and the labels [B, 5].
  auto batch = [&](bool held_out) {
    std::vector<int64_t> ids, mask, labels;
    for (int b = 0; b < o.text_batch; ++b) {
      const world::Scene sc = world::random_scene(rng, held_out);
      const auto lang = b % 2 ? world::Language::German : world::Language::English;
      const world::Omit omit = held_out ? world::Omit::Nothing : draw_omit(o, rng);
      const Tokens tk = tokenizer.encode(world::caption(sc, lang, rng, omit), o.text_len);
      ids.insert(ids.end(), tk.ids.begin(), tk.ids.end());
      mask.insert(mask.end(), tk.mask.begin(), tk.mask.end());
      auto row = scene_attributes(sc);
      // An attribute the caption does not name has no label (cross_entropy's ignore_index).
      if (omit == world::Omit::Color) row[0] = -100;
      if (omit == world::Omit::Shape) row[2] = -100;
      labels.insert(labels.end(), row.begin(), row.end());
    }
    const at::Tensor mask_t = at::tensor(mask).view({o.text_batch, -1});
    const at::Tensor ctx = t5.forward(at::tensor(ids).view({o.text_batch, -1}), mask_t);
    const at::Tensor m = mask_t.to(ctx.device(), at::kFloat).unsqueeze(2);
    const at::Tensor pooled = (ctx * m).sum(1) / m.sum(1);
    return std::make_pair(at::linear(pooled, heads_w, heads_b).split_with_sizes(classes, 1),
                          at::tensor(labels).view({o.text_batch, 5}).to(device));
  };
  const double t0 = now_s();
  for (int step = 0; step < o.text_steps; ++step) {
    const double lr = o.text_lr * std::min(1.0, (step + 1) / 100.0) * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * step / o.text_steps)));
    set_lr(opt, lr);
    auto [logits, labels] = batch(false);
    at::Tensor loss = at::zeros({}, logits[0].options());
    for (int k = 0; k < 5; ++k) loss = loss + at::cross_entropy_loss(logits[k], labels.select(1, k));
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step();
    log.add("text", step, loss.item<float>(), lr);
    if (step % 100 == 0) std::fprintf(stderr, "text %d/%d loss %.4f (%.1fs)\n", step, o.text_steps, loss.item<float>(), now_s() - t0);
  }
  at::NoGradGuard ng;
  std::array<double, 5> correct{};
  constexpr int kBatches = 8;
  for (int rep = 0; rep < kBatches; ++rep) {
    auto [logits, labels] = batch(true);
    for (int k = 0; k < 5; ++k) correct[k] += logits[k].argmax(1).eq(labels.select(1, k)).sum().item<double>();
  }
  Json accuracy;
  for (int k = 0; k < 5; ++k) accuracy[names[k]] = correct[k] / (kBatches * o.text_batch);
  std::fprintf(stderr, "text encoder on held-out combinations: %s\n", accuracy.dump().c_str());
  return accuracy;
}

// The DiT, on the frozen pretrained text encoder, with the rectified-flow
// objective the Wan samplers expect: x_t = (1 - s) x0 + s e, target e - x0, timestep
// int(1000 s); captions (random language, template, synonyms) dropped to ""
// with probability 0.1 for classifier-free guidance. Half of the sigmas are
// logit-normal (the middle, where detail forms), half shift-3 uniform
// (3u / (1 + 2u), the density of the sampler's own schedule), which covers
// the high-noise end where sampling starts and where layout and colour are
// decided. The squared error of latent cells that hold the object is weighted
// `dit_object_weight` (a per-cell weight leaves the optimal prediction
// unchanged and moves capacity to the few cells that decide colour, shape and
// motion); `dit_outline_weight` is added on the cells along the object's
// outline (outline_band), where shapes differ. AdamW, warmup then cosine decay to 10%, gradient clipping at 1,
// EMA of the weights. `checkpoint` is called with the EMA weights every
// `checkpoint_every` steps and at the end.
using Params = std::map<std::string, at::Tensor>;
void train_flow(const UMT5Encoder& t5, const WanDiT& dit, const Weights& dw, const Tokenizer& tokenizer,
                const at::Tensor& latents, const at::Tensor& object_masks, const std::vector<world::Scene>& scenes,
                std::mt19937& rng, LossLog& log, const Options& o, const std::function<void(const Params&)>& checkpoint) {
  const std::vector<at::Tensor> params = values(dw.parameters());
  Params ema_dit;
  for (const auto& [n, p] : dw.parameters()) ema_dit[n] = p.detach().clone();
  int64_t n_params = 0;
  for (auto& p : params) n_params += p.numel();
  std::fprintf(stderr, "DiT: %lld parameters\n", static_cast<long long>(n_params));
  const double t0 = now_s();
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.lr).weight_decay(0.01));
  std::uniform_int_distribution<int> pick(0, static_cast<int>(scenes.size()) - 1);
  std::uniform_real_distribution<float> u01(0, 1);
  const int64_t seq_len = dit.config().tokens(latents.size(2), latents.size(3), latents.size(4));
  const int warmup = std::min(200, o.dit_steps / 10), batch = o.dit_batch;
  at::Tensor frame_err = at::zeros({latents.size(2)}, latents.options());  // summed on the device, read every 50 steps
  for (int step = 0; step < o.dit_steps; ++step) {
    const double p = double(std::max(0, step - warmup)) / std::max(1, o.dit_steps - warmup);
    const double lr = step < warmup ? o.lr * (step + 1) / warmup : o.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p)));
    set_lr(opt, lr);
    std::vector<int64_t> ids, mask, lens, ts;
    std::vector<at::Tensor> x0s, masks;
    std::vector<float> sigmas;
    std::normal_distribution<float> normal(0, 1);
    for (int b = 0; b < batch; ++b) {
      const int i = pick(rng);
      const auto lang = u01(rng) < 0.5f ? world::Language::English : world::Language::German;
      const std::string text = u01(rng) < 0.1f ? std::string() : world::caption(scenes[i], lang, rng, draw_omit(o, rng));
      Tokens tk = tokenizer.encode(text, o.text_len);
      ids.insert(ids.end(), tk.ids.begin(), tk.ids.end());
      mask.insert(mask.end(), tk.mask.begin(), tk.mask.end());
      lens.push_back(tk.length);
      x0s.push_back(latents[i]);
      masks.push_back(object_masks[i]);
      float sigma = 1;
      do {  // a low-noise expert redraws sigmas above its boundary
        const float u = u01(rng);
        sigma = b % 2 ? 1 / (1 + std::exp(-normal(rng))) : 3 * u / (1 + 2 * u);
      } while (o.sigma_max < 1 && sigma >= o.sigma_max);
      sigmas.push_back(sigma);
      ts.push_back(static_cast<int64_t>(sigma * 1000));
    }
    at::Tensor x0 = at::stack(x0s);
    at::Tensor s = at::tensor(sigmas).view({-1, 1, 1, 1, 1}).to(latents.device());
    at::Tensor noise = at::randn_like(x0);
    at::Tensor xt = (1 - s) * x0 + s * noise;
    at::Tensor ctx;
    {
      at::NoGradGuard ng;
      ctx = t5.forward(at::tensor(ids).view({batch, -1}), at::tensor(mask).view({batch, -1}));
    }
    std::vector<at::Tensor> xs, cs;
    for (int b = 0; b < batch; ++b) {
      xs.push_back(xt[b]);
      cs.push_back(ctx[b].slice(0, 0, lens[b]));
    }
    at::Tensor v = at::stack(dit.forward(xs, ts, cs, seq_len));
    const at::Tensor object = at::stack(masks).unsqueeze(1);  // [B, 1, F', H', W']
    at::Tensor weight = 1 + (o.dit_object_weight - 1) * object;
    if (o.dit_outline_weight > 0) weight = weight + o.dit_outline_weight * outline_band(object);
    const at::Tensor err = (v - (noise - x0)).pow(2);
    at::Tensor loss = (weight * err).sum() / (weight.sum() * v.size(1));
    frame_err += err.detach().mean({0, 1, 3, 4});  // unweighted, per latent frame: which frames lag
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step();
    {
      at::NoGradGuard ng;
      const double ema = std::min(o.ema, (1.0 + step) / (10.0 + step));  // warm-up of the EMA
      for (auto& [n, p] : dw.parameters()) ema_dit[n].mul_(ema).add_(p.detach(), 1 - ema);
    }
    log.add("dit", step, loss.item<float>(), lr);
    if (step % 50 == 49) {
      const at::Tensor per_frame = frame_err.cpu() / 50;
      std::string frames;
      for (int64_t f = 0; f < per_frame.size(0); ++f) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%s%.3f", f ? " " : "", per_frame[f].item<float>());
        frames += buf;
      }
      std::fprintf(stderr, "dit %d/%d loss %.4f lr %.2e, mean error of the last 50 steps by latent frame [%s] (%.1fs)\n", step + 1,
                   o.dit_steps, loss.item<float>(), lr, frames.c_str(), now_s() - t0);
      frame_err.zero_();
    }
    if ((step + 1) % o.checkpoint_every == 0 || step + 1 == o.dit_steps) checkpoint(ema_dit);
  }
}

// Sentencepiece on captions of training scenes, with T5's special ids.
void train_tokenizer(const Options& o, const std::string& work, std::mt19937& rng) {
  {
    std::ofstream corpus(work + "/corpus.txt");
    for (int i = 0; i < 20000; ++i) {
      world::Scene s = world::random_scene(rng, false);
      corpus << world::caption(s, i % 2 ? world::Language::German : world::Language::English, rng, draw_omit(o, rng)) << '\n';
    }
  }
  train_sentencepiece(concat("--input=", work, "/corpus.txt --model_prefix=", o.out, "/tokenizer --vocab_size=", o.vocab,
                             " --model_type=unigram --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1",
                             " --byte_fallback=true --hard_vocab_limit=false --num_threads=1 --minloglevel=2",
                             " --input_sentence_size=0 --shuffle_input_sentence=false"));
  fs::remove(o.out + "/tokenizer.vocab");
}

// One step of the VAE's phase 3 (see train_vae): the decoder alone, with the
// reconstruction terms o.decoder_loss.
void train_decoder_step(const Options& o, at::Device device, std::mt19937& rng, LossLog& log, const WanVAE& vae,
                        torch::optim::AdamW& opt, int step, double lr) {
  set_lr(opt, lr);
  std::vector<world::Scene> scenes;
  const at::Tensor x = render_batch(rng, device, o.vae_batch, o.size, o.frames, o.vae_crop, &scenes);
  at::Tensor z;
  {
    at::NoGradGuard ng;
    auto [mu, log_var] = vae.encode_moments(x);
    z = mu + at::exp(0.5 * log_var.clamp(-30, 20)) * at::randn_like(mu);
  }
  const at::Tensor loss = object_weighted_rec(vae.decode_raw(vae.normalise(z)), x, scenes, o.decoder_loss);
  opt.zero_grad();
  loss.backward();
  opt.step();
  log.add("vae_decoder", step, loss.item<float>(), lr);
  if (step % 50 == 0) std::fprintf(stderr, "vae decoder %d weighted rec %.5f (%.1fs)\n", step, loss.item<float>(), now_s() - log.start);
}

// The VAE, in three phases on random spatial crops of whole clips (all
// `frames`, not short windows, so that the causal caches of encoder and
// decoder see what they hold at inference: the first frame alone, then chunks
// of 4 frames continuing from real history):
//  1. object-weighted reconstruction (object_weighted_rec) + 1e-4 KL, `vae_steps`;
//  2. the same plus temporal consistency, `vae_consistency_steps`: the last
//     clip of every batch is still, and the variance of its latent over time
//     (relative to its total variance) is penalised. Without it the first
//     latent frame, encoded alone, gets its own code for the same content
//     (measured: latent frames 0 and 1 of a clip were further apart than
//     unrelated latents), and the DiT, whose positions are only relative
//     (RoPE), cannot tell frame 0 apart at high noise: it rendered frame 0 in
//     the wrong colours and learned the text only weakly. Phase 2 starts from
//     a VAE that reconstructs: from scratch the penalty wins and the
//     reconstruction never starts (measured);
//  3. the decoder alone, `vae_decoder_steps`, with the encoder frozen (the
//     latent space, and so the DiT's data, stay as they are): sharper object
//     colours for the latents the DiT learns.
// `pretrained`: phase 1 was done (the weights came from a file).
void train_vae(const Options& o, at::Device device, std::mt19937& rng, LossLog& log, WanVAE& vae, const Weights& w,
               bool pretrained) {
  if (!pretrained) {
    // Start the posterior narrow (log-variance bias -8): with sigma ~ 1 the
    // decoder first sees mostly noise and reconstruction stalls for long.
    at::NoGradGuard ng;
    w.parameters().at("conv1.bias").slice(0, 16).fill_(-8.0);
  }
  const double t0 = now_s();
  const std::vector<at::Tensor> params = values(w.parameters());
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.vae_lr).weight_decay(0.0));
  const int first = pretrained ? o.vae_steps : 0, decoder_first = o.vae_steps + o.vae_consistency_steps,
            last = decoder_first + o.vae_decoder_steps;
  for (int step = first; step < last; ++step) {
    if (step >= decoder_first) {
      train_decoder_step(o, device, rng, log, vae, opt, step, 0.3 * o.vae_lr);
      continue;
    }
    const bool phase2 = step >= o.vae_steps;
    const double p = double(step) / o.vae_steps;
    const double lr = phase2 ? 0.3 * o.vae_lr
                             : o.vae_lr * std::min(1.0, (step + 1) / 50.0) * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p)));
    set_lr(opt, lr);
    std::vector<world::Scene> scenes;
    at::Tensor x = phase2 ? at::cat({render_batch(rng, device, o.vae_batch - 1, o.size, o.frames, o.vae_crop, &scenes),
                                     render_batch(rng, device, 1, o.size, o.frames, o.vae_crop, &scenes, /*still=*/true)})
                          : render_batch(rng, device, o.vae_batch, o.size, o.frames, o.vae_crop, &scenes);
    auto [mu, log_var] = vae.encode_moments(x);
    log_var = log_var.clamp(-30, 20);
    at::Tensor z = mu + at::exp(0.5 * log_var) * at::randn_like(mu);
    at::Tensor recon = vae.decode_raw(vae.normalise(z));
    at::Tensor rec = object_weighted_rec(recon, x, scenes);
    at::Tensor kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).mean();
    at::Tensor loss = rec + 1e-4 * kl;
    at::Tensor consistency = at::zeros({});
    if (phase2) {
      const at::Tensor still = mu.slice(0, o.vae_batch - 1);
      consistency = (still - still.mean(2, true)).pow(2).mean() / still.var().detach().clamp_min(1e-6);
      loss = loss + o.vae_consistency * consistency;
    }
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);  // gradients through 17 frames of causal caches can spike
    opt.step();
    log.add(phase2 ? "vae_consistency" : "vae", step, rec.item<float>(), lr);
    if (step % 50 == 0)
      std::fprintf(stderr, "vae %d/%d rec %.5f kl %.3f consistency %.4f (%.1fs)\n", step, last, rec.item<float>(),
                   kl.item<float>(), consistency.item<float>(), now_s() - t0);
  }
}

// Posterior means of `clips` random training clips, their object masks at
// latent resolution (latent_object_mask) and their scenes' attributes
// (colour, background, shape, large, motion) as a [clips, 5] int64 table,
// cached in `path` so a resumed run need not encode again.
struct TrainingLatents {
  at::Tensor latents, object_masks;
  std::vector<world::Scene> scenes;
};
TrainingLatents encode_latents(const Options& o, at::Device device, std::mt19937& rng, const WanVAE& vae,
                               const WanVAEConfig& vcfg, const std::string& path) {
  at::Tensor latents, masks, table;
  if (fs::exists(path)) {
    Weights cache(path);
    latents = cache.take("latents");
    masks = cache.take("object_masks");
    table = cache.take("scenes");
    cache.finish();
  } else {
    at::NoGradGuard ng;
    std::vector<at::Tensor> mus, ms;
    std::vector<world::Scene> drawn;
    const int batch = device.is_cpu() ? 2 : 16;  // small batches on a CPU: large ones thrash memory
    for (int i = 0; i < o.clips; i += batch) {
      const size_t first = drawn.size();
      at::Tensor x = render_batch(rng, device, std::min(batch, o.clips - i), o.size, o.frames, 0, &drawn);
      mus.push_back(vae.encode_moments(x).first.cpu());
      const std::vector<world::Scene> these(drawn.begin() + static_cast<std::ptrdiff_t>(first), drawn.end());
      ms.push_back(latent_object_mask(object_mask(x, these), vcfg.temporal_stride(), vcfg.spatial_stride()).cpu());
    }
    // Written by raw pointer, so row-major: on CUDA the encoder's output can
    // come back channels-last, and cat keeps that layout (a cache written so
    // read back as scrambled channels).
    latents = at::cat(mus).contiguous();
    masks = at::cat(ms).contiguous();
    std::vector<int64_t> rows;
    for (const auto& s : drawn) {
      const auto row = scene_attributes(s);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    table = at::tensor(rows).view({-1, 5});
    write_safetensors(path, {{"latents", DType::F32, latents.sizes().vec(), latents.data_ptr()},
                             {"object_masks", DType::F32, masks.sizes().vec(), masks.data_ptr()},
                             {"scenes", DType::I64, table.sizes().vec(), table.data_ptr()}});
  }
  std::vector<world::Scene> scenes(static_cast<size_t>(table.size(0)));
  auto t = table.accessor<int64_t, 2>();
  for (size_t i = 0; i < scenes.size(); ++i) {
    scenes[i].color = static_cast<int>(t[i][0]);
    scenes[i].background = static_cast<int>(t[i][1]);
    scenes[i].shape = static_cast<world::Shape>(t[i][2]);
    scenes[i].large = t[i][3] != 0;
    scenes[i].motion = static_cast<world::Motion>(t[i][4]);
  }
  return {latents, masks, scenes};
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
      {"defaults", defaults_json(defaults)}};
}

// The fields every run's report starts with.
Json run_record(const std::string& run, const Options& o, at::Device device) {
  return {{"run", run}, {"seed", o.seed}, {"threads", at::get_num_threads()}, {"device", device.str()}};
}

// The number of the next run named `prefix`N in `folder`: one past the
// highest N of any `prefix`N_* file there, so a gap left by a deleted or lost
// log is never filled. It names the run's loss log, plot and report
// ("resume1", "decoder1", ...) so that no run overwrites the record of an
// earlier one, and offsets the seed so that each run draws other batches.
int next_run(const std::string& folder, const std::string& prefix) {
  int last = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    int n = 0;
    if (name.rfind(prefix, 0) == 0 && std::sscanf(name.c_str() + prefix.size(), "%d_", &n) == 1) last = std::max(last, n);
  }
  return last + 1;
}

// Refuses a latent cache of another clip count than --clips (checked before
// the run writes anything).
void check_latent_cache(const std::string& path, int clips) {
  if (!fs::exists(path)) return;
  const TensorSet cache = TensorSet::open(path);
  const TensorView* latents = cache.find("latents");
  if (!latents || latents->shape.empty()) throw Error(concat(path, ": no 'latents' tensor (not a kino-train latent cache)"));
  if (latents->shape[0] != clips)
    throw Error(concat(path, ": the latent cache holds ", latents->shape[0], " clips, --clips asks for ", clips,
                       " (use another --work folder, or delete the cache)"));
}

// All stages from scratch into o.out: tokenizer, VAE, latents of the training
// clips (cached in .train/), text encoder + DiT. With o.resume the first three
// come from o.out and the text encoder and DiT continue from its weights.
// The model folder is complete (manifest, all weights) from the first DiT
// checkpoint on, so a checkpoint can be tried with `kino generate`.
Json run_training(const Options& o) {
  const at::Device device = parse_device(o.device);
  const std::string work = o.work.empty() ? o.out + "/.train" : o.work;
  check_latent_cache(work + "/latents.safetensors", o.clips);
  fs::create_directories(o.out);
  fs::create_directories(work);
  const int index = o.resume ? next_run(o.out, "resume") : 0;
  const std::string run = index ? concat("resume", index) : std::string("training");
  std::mt19937 rng(static_cast<uint32_t>(o.seed + index));
  at::manual_seed(o.seed + index);
  LossLog log(concat(o.out, "/", run, "_loss.csv"));
  Json report = run_record(run, o, device);
  report["resumed"] = o.resume;

  double t0 = now_s();
  if (!o.resume) {
    train_tokenizer(o, work, rng);
    report["tokenizer"] = {{"seconds", now_s() - t0}};
  }
  Tokenizer tokenizer(o.out + "/tokenizer.model");
  report["tokenizer"]["vocab"] = tokenizer.vocab_size();

  std::optional<ModelManifest> previous, frozen_vae;
  if (o.resume) previous = load_manifest(o.out);
  if (!previous && !o.vae_model.empty()) frozen_vae = load_manifest(o.vae_model);
  WanVAEConfig vcfg;
  if (previous) {
    vcfg = vae_config(*previous);
  } else if (frozen_vae) {
    vcfg = vae_config(*frozen_vae);  // its latent statistics are measured again below
  } else {
    vcfg.dim = o.vae_dim;
    vcfg.latents_mean.assign(16, 0.0f);
    vcfg.latents_std.assign(16, 1.0f);
  }
  const bool vae_pretrained = !previous && !o.vae_from.empty();
  Weights vw = previous         ? Weights(previous->vae, at::kFloat, /*trainable=*/false, device)
               : frozen_vae     ? Weights(frozen_vae->vae, at::kFloat, /*trainable=*/false, device)
               : vae_pretrained ? Weights(o.vae_from + "/vae.safetensors", at::kFloat, /*trainable=*/true, device)
                                : Weights::initializer(o.seed + 1, device);
  WanVAE vae(vcfg, vw);
  vae.to(device, at::kFloat);  // the module's own constants; the weights are there already (no copy)
  if (frozen_vae) {
    vw.finish();
    report["vae"] = {{"from", o.vae_model}};
  } else if (!previous) {
    t0 = now_s();
    train_vae(o, device, rng, log, vae, vw, vae_pretrained);
    report["vae"] = {{"steps", o.vae_steps},
                     {"consistency_steps", o.vae_consistency_steps},
                     {"decoder_steps", o.vae_decoder_steps},
                     {"phase1_from", vae_pretrained ? o.vae_from : "this run"},
                     {"crop", o.vae_crop},
                     {"final_rec_mean100", tail_mean(log)},
                     {"seconds", now_s() - t0}};
  }

  // Latents of the training clips; on a fresh run their per-channel
  // statistics become the VAE's latent normalisation (as Wan's mean/std).
  t0 = now_s();
  auto [raw, object_masks, scenes] = encode_latents(o, device, rng, vae, vcfg, work + "/latents.safetensors");
  {
    std::ofstream captions(work + "/captions.txt");  // what the clips show, to check a run against its data
    for (const auto& s : scenes) captions << world::canonical_caption(s, world::Language::English) << '\n';
  }
  if (!previous) {
    at::Tensor mean = raw.mean({0, 2, 3, 4}), std = raw.std({0, 2, 3, 4});
    for (int c = 0; c < 16; ++c) {
      vcfg.latents_mean[c] = mean[c].item<float>();
      vcfg.latents_std[c] = std[c].item<float>();
    }
    if (frozen_vae)
      fs::copy_file(frozen_vae->vae, o.out + "/vae.safetensors", fs::copy_options::overwrite_existing);
    else
      save(o.out + "/vae.safetensors", vw.parameters(), "vae");
  }
  const at::Tensor latents =
      ((raw - at::tensor(vcfg.latents_mean).view({1, 16, 1, 1, 1})) / at::tensor(vcfg.latents_std).view({1, 16, 1, 1, 1}))
          .to(device);
  report["latents"] = {{"clips", latents.size(0)}, {"shape", latents.sizes().vec()}, {"seconds", now_s() - t0}};
  std::fprintf(stderr, "latents %s in %.1fs\n", c10::str(latents.sizes()).c_str(), now_s() - t0);

  UMT5Config tcfg;
  WanDiTConfig dcfg;
  if (previous) {
    tcfg = umt5_config(*previous);
    dcfg = dit_config(*previous);
  } else {
    tcfg.vocab = tokenizer.vocab_size();
    tcfg.dim = tcfg.dim_attn = o.t5_dim;
    tcfg.dim_ffn = o.t5_ffn;
    tcfg.num_heads = o.t5_heads;
    tcfg.num_layers = o.t5_layers;
    dcfg.dim = o.dit_dim;
    dcfg.ffn_dim = o.dit_ffn;
    dcfg.num_heads = o.dit_heads;
    dcfg.num_layers = o.dit_layers;
    dcfg.patch_size = {1, o.dit_patch, o.dit_patch};
    dcfg.text_dim = o.t5_dim;
    dcfg.text_len = o.text_len;
  }
  Weights tw = previous ? Weights(previous->text_encoder, at::kFloat, true, device) : Weights::initializer(o.seed + 2, device);
  Weights dw = previous ? Weights(previous->transformer, at::kFloat, true, device) : Weights::initializer(o.seed + 3, device);
  UMT5Encoder t5(tcfg, tw);
  WanDiT dit(dcfg, dw);
  dit.to(device, at::kFloat);  // the RoPE tables; the weights are there already (no copy)
  tw.finish();
  dw.finish();
  std::ofstream(o.out + "/kino.json") << manifest_json(o, tcfg, dcfg, vcfg).dump(2) << '\n';
  if (!previous) {
    t0 = now_s();
    const Json accuracy = pretrain_text_encoder(t5, tw, tokenizer, rng, log, o, device);
    report["text_encoder"] = {{"steps", o.text_steps},          {"batch", o.text_batch}, {"partial_captions", o.partial_captions},
                              {"final_loss_mean100", tail_mean(log)}, {"held_out_accuracy", accuracy},
                              {"seconds", now_s() - t0}};
    save(o.out + "/text_encoder.safetensors", tw.parameters(), "text_encoder");
  }
  t0 = now_s();
  train_flow(t5, dit, dw, tokenizer, latents, object_masks.to(device), scenes, rng, log, o, [&](const Params& ema_dit) {
    save(o.out + "/transformer.safetensors", ema_dit, "transformer");
    log.csv.flush();
  });
  report["dit"] = {{"steps", o.dit_steps},       {"batch", o.dit_batch},   {"partial_captions", o.partial_captions},
                   {"outline_weight", o.dit_outline_weight}, {"final_loss_mean100", tail_mean(log)}, {"seconds", now_s() - t0}};
  log.csv.flush();
  plot_losses(log, concat(o.out, "/", run, "_loss.png"));
  report["total_seconds"] = now_s() - log.start;
  return report;
}

}  // namespace

// More of the VAE's phase 3 on a finished model, in place: the decoder of
// o.out's VAE trains o.vae_decoder_steps more steps (peak lr o.vae_lr after a
// 20-step warmup for the new optimiser's moments, cosine decay to a tenth). The encoder, and so the latent space the
// DiT learned and the manifest's latent statistics, stay as they are. The
// weights are written every o.checkpoint_every steps and at the end; the run
// is logged as decoderN_loss.csv/.png and decoderN_report.json.
Json continue_decoder(const Options& o) {
  const at::Device device = parse_device(o.device);
  const ModelManifest m = load_manifest(o.out);
  const int index = next_run(o.out, "decoder");
  const std::string run = concat("decoder", index);
  std::mt19937 rng(static_cast<uint32_t>(o.seed + 1000 + index));
  at::manual_seed(o.seed + 1000 + index);
  LossLog log(concat(o.out, "/", run, "_loss.csv"));
  Weights w(m.vae, at::kFloat, /*trainable=*/true, device);
  WanVAE vae(vae_config(m), w);
  w.finish();
  vae.to(device, at::kFloat);
  // Only the decoder gets gradients (train_decoder_step encodes without them).
  torch::optim::AdamW opt(values(w.parameters()), torch::optim::AdamWOptions(o.vae_lr).weight_decay(0.0));
  for (int step = 0; step < o.vae_decoder_steps; ++step) {
    const double p = double(step) / o.vae_decoder_steps, warmup = std::min(1.0, (step + 1) / 20.0);
    train_decoder_step(o, device, rng, log, vae, opt, step, o.vae_lr * warmup * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p))));
    if ((step + 1) % o.checkpoint_every == 0 || step + 1 == o.vae_decoder_steps) {
      save(m.vae, w.parameters(), "vae");
      log.csv.flush();
    }
  }
  plot_losses(log, concat(o.out, "/", run, "_loss.png"));
  Json report = run_record(run, o, device);
  report.update({{"decoder_steps", o.vae_decoder_steps},
                 {"batch", o.vae_batch},
                 {"crop", o.vae_crop},
                 {"lr", o.vae_lr},
                 {"halo_weight", o.decoder_loss.halo},
                 {"edge_weight", o.decoder_loss.edge},
                 {"l1_weight", o.decoder_loss.l1},
                 {"stray_weight", o.decoder_loss.stray},
                 {"final_rec_mean100", tail_mean(log)},
                 {"seconds", now_s() - log.start}});
  return report;
}

// A low-noise expert for a finished model (Wan2.2 A14B's mixture of experts
// over time, at kino-tiny size): a copy of o.out's transformer (or its
// expert, if it has one) continues for o.dit_steps steps on the timesteps
// below o.sigma_max * 1000 only, with the frozen text encoder, on the cached
// latents of o.clips clips; the model becomes a wan2.2 two-expert model whose
// first transformer keeps the steps above that boundary. Logged as expertN_*.
Json train_expert(const Options& o) {
  const at::Device device = parse_device(o.device);
  const ModelManifest m = load_manifest(o.out);
  const std::string work = o.work.empty() ? o.out + "/.train" : o.work;
  check_latent_cache(work + "/latents.safetensors", o.clips);
  fs::create_directories(work);
  const int index = next_run(o.out, "expert");
  const std::string run = concat("expert", index);
  std::mt19937 rng(static_cast<uint32_t>(o.seed + 2000 + index));
  at::manual_seed(o.seed + 2000 + index);
  LossLog log(concat(o.out, "/", run, "_loss.csv"));
  const Tokenizer tokenizer(m.tokenizer);

  const WanVAEConfig vcfg = vae_config(m);
  Weights vw(m.vae, at::kFloat, /*trainable=*/false, device);
  WanVAE vae(vcfg, vw);
  vw.finish();
  vae.to(device, at::kFloat);
  double t0 = now_s();
  auto [raw, object_masks, scenes] = encode_latents(o, device, rng, vae, vcfg, work + "/latents.safetensors");
  const at::Tensor latents = vae.normalise(raw.to(device));
  const double encode_s = now_s() - t0;

  Weights tw(m.text_encoder, at::kFloat, /*trainable=*/false, device);
  UMT5Encoder t5(umt5_config(m), tw);
  tw.finish();
  const bool again = !m.transformer_low_noise.empty();
  Weights dw(again ? m.transformer_low_noise : m.transformer, at::kFloat, /*trainable=*/true, device);
  WanDiT dit(dit_config(m, again), dw);
  dit.to(device, at::kFloat);  // the RoPE tables
  dw.finish();

  // The manifest names the expert from its first checkpoint on.
  Json manifest = Json::parse(std::ifstream(o.out + "/kino.json"));
  manifest["family"] = "wan2.2";
  manifest["description"] =
      "kino's embedded default: the Wan architecture at tiny size (two experts over time, as Wan2.2 A14B), trained by "
      "kino-train on a synthetic world of flat shapes";
  manifest["transformer_low_noise"] = {{"weights", "transformer_low_noise.safetensors"}};
  manifest["boundary_ratio"] = o.sigma_max;
  if (!manifest["defaults"].contains("cfg_low_noise")) manifest["defaults"]["cfg_low_noise"] = manifest["defaults"]["cfg"];
  bool written = false;
  t0 = now_s();
  train_flow(t5, dit, dw, tokenizer, latents, object_masks.to(device), scenes, rng, log, o, [&](const Params& ema_dit) {
    save(o.out + "/transformer_low_noise.safetensors", ema_dit, "transformer_low_noise");
    if (!written) {
      AtomicFile file(o.out + "/kino.json");
      std::ofstream(file.temp_path()) << manifest.dump(2) << '\n';
      file.commit();
      written = true;
    }
    log.csv.flush();
  });
  plot_losses(log, concat(o.out, "/", run, "_loss.png"));
  Json report = run_record(run, o, device);
  report.update({{"from", again ? "transformer_low_noise.safetensors" : "transformer.safetensors"},
                 {"boundary_ratio", o.sigma_max},
                 {"clips", o.clips},
                 {"latents_seconds", encode_s},
                 {"steps", o.dit_steps},
                 {"batch", o.dit_batch},
                 {"lr", o.lr},
                 {"final_loss_mean100", tail_mean(log)},
                 {"seconds", now_s() - t0}});
  return report;
}

// The VAE's ceiling on prompt following: random scenes (a third from the
// held-out combinations) through encode and decode, measured from pixels as
// the evaluation measures generated clips. No DiT can render what the VAE
// cannot reproduce. `latent_noise` > 0 adds Gaussian noise of that standard
// deviation to the normalised latents before decoding: how well the decoder
// tolerates a DiT's errors. `strip`: every fourth frame of the first four
// clips, one row each, as a PNG.
void eval_vae(const std::string& model, const std::string& device, int clips, int size, int frames, double latent_noise,
              const std::string& strip) {
  const ModelManifest m = load_manifest(model);
  const at::Device dev = parse_device(device);
  Weights w(m.vae, at::kFloat, /*trainable=*/false, dev);
  WanVAE vae(vae_config(m), w);
  w.finish();
  vae.to(dev, at::kFloat);
  c10::InferenceMode inference;
  std::mt19937 rng(11);
  int background = 0, color = 0, shape = 0, motion = 0;
  std::array<std::vector<float>, 3> fills;      // fill ratios by true shape
  std::array<std::array<int, 3>, 3> confusion{};  // [true shape][measured shape]
  std::vector<at::Tensor> rows;
  for (int i = 0; i < clips; ++i) {
    const world::Scene s = world::random_scene(rng, i % 3 == 2);
    at::Tensor z = vae.encode(render_clip(s, size, frames).to(dev));
    if (latent_noise > 0) z = z + latent_noise * at::randn_like(z);
    const at::Tensor out = video_to_uint8(vae.decode(z)).cpu();  // [F, H, W, 3]
    if (rows.size() < 4) rows.push_back(at::cat(out.slice(0, 0, frames, 4).unbind(0), 1));
    const world::Measurement r =
        world::measure(std::vector<uint8_t>(out.data_ptr<uint8_t>(), out.data_ptr<uint8_t>() + out.numel()), size, size, frames);
    background += r.background == s.background;
    color += r.color == s.color;
    shape += r.shape == s.shape;
    motion += r.motion == s.motion;
    if (r.object_found) {
      fills[static_cast<size_t>(s.shape)].push_back(r.fill_ratio);
      ++confusion[static_cast<size_t>(s.shape)][static_cast<size_t>(r.shape)];
    }
  }
  if (!strip.empty()) {
    const at::Tensor img = at::cat(rows, 0).contiguous();
    write_png(strip, img.data_ptr<uint8_t>(), img.size(1), img.size(0));
  }
  auto pct = [&](int k) { return 100.0 * k / clips; };
  std::printf("| VAE round trip | n | background | colour | shape | motion |\n|---|---|---|---|---|---|\n");
  std::printf("| %s | %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", m.name.c_str(), clips, pct(background), pct(color),
              pct(shape), pct(motion));
  std::printf("\n| true shape | clips | median fill ratio | measured circle / square / triangle |\n|---|---|---|---|\n");
  const char* names[] = {"circle", "square", "triangle"};
  for (size_t k = 0; k < 3; ++k) {
    std::vector<float>& v = fills[k];
    if (v.empty()) continue;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    std::printf("| %s | %zu | %.2f | %d / %d / %d |\n", names[k], v.size(), v[v.size() / 2], confusion[k][0],
                confusion[k][1], confusion[k][2]);
  }
}

int main(int argc, char** argv) {
  CLI::App app{"kino-train: train and evaluate kino-tiny"};
  app.require_subcommand(1);
  Options o;
  auto* tr = app.add_subcommand("train", "Train kino-tiny from scratch");
  tr->add_option("--out", o.out, "Output model folder")->capture_default_str();
  tr->add_option("--seed", o.seed)->capture_default_str();
  tr->add_option("--device", o.device, "auto (cuda when there is one), cpu, cuda[:N]")->capture_default_str();
  tr->add_option("--threads", o.threads, "CPU threads (0: all)");
  tr->add_option("--work", o.work, "Folder for the latent cache and the tokenizer corpus (default: <out>/.train)");
  tr->add_option("--vae-steps", o.vae_steps)->capture_default_str();
  tr->add_option("--vae-batch", o.vae_batch)->capture_default_str();
  tr->add_option("--vae-lr", o.vae_lr)->capture_default_str();
  tr->add_option("--vae-dim", o.vae_dim)->capture_default_str();
  tr->add_option("--vae-crop", o.vae_crop, "Spatial crop of the VAE's training clips")->capture_default_str();
  tr->add_option("--vae-consistency-steps", o.vae_consistency_steps, "VAE phase 2 steps")->capture_default_str();
  tr->add_option("--vae-decoder-steps", o.vae_decoder_steps, "VAE phase 3 steps")->capture_default_str();
  tr->add_option("--vae-from", o.vae_from, "Start from this model's VAE after its phase 1 (run phase 2 only)");
  tr->add_option("--vae-model", o.vae_model, "Use this model's finished VAE as it is (train tokenizer, text encoder and DiT only)");
  tr->add_option("--clips", o.clips, "Training clips (latents)")->capture_default_str();
  tr->add_option("--dit-steps", o.dit_steps)->capture_default_str();
  tr->add_option("--dit-batch", o.dit_batch)->capture_default_str();
  tr->add_option("--dit-dim", o.dit_dim)->capture_default_str();
  tr->add_option("--dit-layers", o.dit_layers)->capture_default_str();
  tr->add_option("--dit-patch", o.dit_patch, "DiT spatial patch size (1 or 2; a new DiT only)")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  tr->add_option("--lr", o.lr, "DiT learning rate")->capture_default_str();
  tr->add_option("--text-steps", o.text_steps, "Text encoder pretraining steps (attribute prediction)")->capture_default_str();
  tr->add_option("--text-lr", o.text_lr)->capture_default_str();
  tr->add_option("--dit-object-weight", o.dit_object_weight, "DiT loss weight of latent cells that hold the object")
      ->capture_default_str();
  tr->add_option("--dit-outline-weight", o.dit_outline_weight,
                 "Extra DiT loss weight of the latent cells along the object's outline (where shapes differ)")
      ->capture_default_str();
  tr->add_option("--partial-captions", o.partial_captions,
                 "Share of training captions (tokenizer corpus, text encoder, DiT) that leave out the colour or the shape")
      ->capture_default_str();
  tr->add_option("--checkpoint-every", o.checkpoint_every, "Write the EMA weights every N DiT steps")->capture_default_str();
  tr->add_flag("--resume", o.resume,
               "Continue the text encoder and DiT of --out for --dit-steps more steps (tokenizer, VAE and cached latents "
               "kept; logs in resumeN_loss.csv, resumeN_report.json)");
  tr->add_option("--sampler", o.sampler, "Default sampler written to the manifest")->capture_default_str();
  tr->add_option("--sample-steps", o.sample_steps, "Default steps written to the manifest")->capture_default_str();
  tr->add_option("--cfg", o.cfg, "Default guidance written to the manifest")->capture_default_str();
  tr->add_option("--shift", o.shift, "Default shift written to the manifest")->capture_default_str();

  // `decoder`'s defaults are the shipped weights' continuation (scripts/train-tiny.sh).
  auto* dec = app.add_subcommand("decoder", "Train the VAE decoder of a finished model further, in place");
  std::string dec_model;
  int dec_steps = 400, dec_batch = 2, dec_crop = 0;
  double dec_lr = 9e-5, dec_halo = 4, dec_edge = 0, dec_l1 = 0.1, dec_stray = 0;
  dec->add_option("--model", dec_model, "Model folder (its vae.safetensors is replaced)")->required();
  dec->add_option("--steps", dec_steps)->capture_default_str();
  dec->add_option("--batch", dec_batch)->capture_default_str();
  dec->add_option("--crop", dec_crop, "Spatial crop of the training clips (0: whole frames)")->capture_default_str();
  dec->add_option("--lr", dec_lr, "Peak learning rate")->capture_default_str();
  dec->add_option("--halo-weight", dec_halo, "Extra loss weight of the background band around the object")
      ->capture_default_str();
  dec->add_option("--edge-weight", dec_edge, "Extra loss weight of the frame's outer 3 pixels")->capture_default_str();
  dec->add_option("--l1-weight", dec_l1, "Weight of the absolute error beside the squared error")->capture_default_str();
  dec->add_option("--stray-weight", dec_stray, "Weight of background pixels decoded far from the background")
      ->capture_default_str();
  dec->add_option("--checkpoint-every", o.checkpoint_every)->capture_default_str();
  dec->add_option("--seed", o.seed)->capture_default_str();
  dec->add_option("--threads", o.threads);
  dec->add_option("--device", o.device)->capture_default_str();

  // `expert`'s defaults: see scripts/train-tiny.sh and TRAINING.md.
  auto* ex = app.add_subcommand("expert", "Train a low-noise expert for a finished model (two experts over time, as Wan2.2 A14B)");
  std::string ex_model;
  int ex_steps = 3000, ex_batch = 16, ex_clips = 600;
  double ex_lr = 1e-3, ex_boundary = 0.875;
  ex->add_option("--model", ex_model, "Model folder (gains transformer_low_noise.safetensors; its manifest becomes wan2.2)")->required();
  ex->add_option("--boundary", ex_boundary, "Boundary ratio: the expert takes the timesteps below boundary x 1000")
      ->check(CLI::Range(0.05, 0.99))
      ->capture_default_str();
  ex->add_option("--steps", ex_steps)->capture_default_str();
  ex->add_option("--batch", ex_batch)->capture_default_str();
  ex->add_option("--lr", ex_lr, "Peak learning rate")->capture_default_str();
  ex->add_option("--clips", ex_clips, "Training clips (latents, cached in --work)")->capture_default_str();
  ex->add_option("--work", o.work, "Latent cache folder (default: <model>/.train)");
  ex->add_option("--checkpoint-every", o.checkpoint_every)->capture_default_str();
  ex->add_option("--seed", o.seed)->capture_default_str();
  ex->add_option("--threads", o.threads);
  ex->add_option("--device", o.device)->capture_default_str();

  auto* ev = app.add_subcommand("eval", "Measure prompt following from pixels");
  std::string model = "models/kino-tiny", json_out;
  int per_group = 24;
  uint64_t cases_seed = 7;
  int steps = 0;
  double cfg = -1, shift = -1;
  ev->add_option("--model", model)->capture_default_str();
  ev->add_option("--per-group", per_group, "Prompts per group (English, German, held-out)")->capture_default_str();
  ev->add_option("--cases-seed", cases_seed, "Draws the prompts and their seeds (the CI test's 12 prompts: --per-group 4 --cases-seed 2026)")
      ->capture_default_str();
  ev->add_option("--json", json_out, "Write the full report here");
  ev->add_option("--steps", steps, "Override the model's default steps");
  ev->add_option("--cfg", cfg, "Override the model's default guidance");
  ev->add_option("--shift", shift, "Override the model's default sampling shift");
  ev->add_option("--threads", o.threads);
  ev->add_option("--device", o.device)->capture_default_str();
  auto* ve = app.add_subcommand("eval-vae", "Measure what the VAE alone reproduces (encode + decode)");
  int vae_clips = 48;
  ve->add_option("--model", model)->capture_default_str();
  ve->add_option("--clips", vae_clips)->capture_default_str();
  double latent_noise = 0;
  std::string strip;
  ve->add_option("--latent-noise", latent_noise, "Std of Gaussian noise added to the normalised latents before decoding")
      ->capture_default_str();
  ve->add_option("--strip", strip, "Write every fourth frame of the first four clips to this PNG");
  ve->add_option("--threads", o.threads);
  ve->add_option("--device", o.device)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  at::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency()));
  try {
    if (*dec) {
      o.out = dec_model;
      o.vae_decoder_steps = dec_steps;
      o.vae_batch = dec_batch;
      o.vae_crop = dec_crop;
      o.vae_lr = dec_lr;
      o.decoder_loss = {dec_halo, dec_edge, dec_l1, dec_stray};
    }
    if (*ex) {
      o.out = ex_model;
      o.dit_steps = ex_steps;
      o.dit_batch = ex_batch;
      o.clips = ex_clips;
      o.lr = ex_lr;
      o.sigma_max = ex_boundary;
    }
    if (*tr || *dec || *ex) {
      Json report = *tr ? run_training(o) : *dec ? continue_decoder(o) : train_expert(o);
      std::ofstream(concat(o.out, "/", report["run"].get<std::string>(), "_report.json")) << report.dump(2) << '\n';
      std::printf("%s\n", report.dump(2).c_str());
    } else if (*ve) {
      eval_vae(model, o.device, vae_clips, o.size, o.frames, latent_noise, strip);
    } else {
      // float32 on every device: the shipped model runs in float32 on CPUs.
      Pipeline p(load_manifest(model), RuntimeOptions{o.device, "float32", o.threads});
      GenerationRequest base;
      if (steps > 0) base.steps = steps;
      if (cfg >= 0) base.cfg = cfg;
      if (shift > 0) base.shift = shift;
      const double t0 = now_s();
      EvalReport r = evaluate(p, make_eval_cases(per_group, cases_seed), base);
      std::printf("%s(%d prompts in %.0f s)\n", r.table().c_str(), 3 * per_group, now_s() - t0);
      if (!json_out.empty()) std::ofstream(json_out) << r.to_json().dump(2) << '\n';
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kino-train: %s\n", e.what());
    return 1;
  }
  return 0;
}
