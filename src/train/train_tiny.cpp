// kino-train: trains kino-tiny from scratch on the synthetic world with the
// same modules the pipeline runs (umT5 encoder, Wan DiT, Wan VAE), and
// evaluates prompt following from pixels.
//
//   kino-train train --out models/kino-tiny
//   kino-train eval  --model models/kino-tiny --per-group 48
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "kino/error.h"
#include "kino/evaluate.h"
#include "kino/safetensors.h"
#include "kino/tokenizer.h"
#include "kino/umt5.h"
#include "kino/video_writer.h"
#include "kino/wan_dit.h"
#include "kino/wan_t2v.h"
#include "kino/wan_vae.h"
#include "kino/world.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace kino;

namespace {

struct Options {
  std::string out = "models/kino-tiny";
  uint64_t seed = 20261122;
  int threads = 0;
  int size = 128, frames = 17;
  int vae_steps = 1500, vae_batch = 4, vae_dim = 8;
  int clips = 2000;
  int dit_steps = 2600, dit_batch = 16, dit_dim = 128, dit_layers = 4, dit_heads = 4, dit_ffn = 256;
  int t5_dim = 64, t5_layers = 2, t5_heads = 4, t5_ffn = 128, vocab = 400, text_len = 32;
  double lr = 5e-4, ema = 0.998, vae_lr = 2e-3;
};

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

// Clips of random training scenes as [B, 3, F, H, W] in [-1, 1], rendered
// at the clip length `frames`. `crop` > 0 cuts a random window of
// crop_frames x crop x crop (the VAE trains on such windows: same motion
// speed as full clips, less compute).
at::Tensor render_batch(std::mt19937& rng, int batch, int size, int frames, int crop, std::vector<world::Scene>* scenes,
                        int crop_frames = 5) {
  std::vector<at::Tensor> clips;
  for (int b = 0; b < batch; ++b) {
    world::Scene s = world::random_scene(rng, false);
    std::vector<uint8_t> rgb = world::render(s, size, size, frames);
    at::Tensor t = at::from_blob(rgb.data(), {frames, size, size, 3}, at::kByte).to(at::kFloat).permute({3, 0, 1, 2});
    if (crop > 0) {
      const int f0 = std::uniform_int_distribution<int>(0, frames - crop_frames)(rng);
      t = t.slice(1, f0, f0 + crop_frames);
      std::uniform_int_distribution<int> d(0, size - crop);
      const int oy = d(rng), ox = d(rng);
      t = t.slice(2, oy, oy + crop).slice(3, ox, ox + crop);
    }
    clips.push_back(t.contiguous() / 127.5 - 1);
    if (scenes) scenes->push_back(s);
  }
  return at::stack(clips);
}

void set_lr(torch::optim::AdamW& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

void save(const std::string& path, const std::map<std::string, at::Tensor>& params, const std::string& component) {
  std::vector<at::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : params) {
    keep.push_back(t.detach().to(at::kFloat).contiguous());
    out.push_back({name, DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
  }
  write_safetensors(path, out, {{"component", component}, {"trained_by", "kino-train"}});
}

// Scales all gradients so that their joint L2 norm is at most max_norm.
void clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard ng;
  double total = 0;
  for (const auto& p : params)
    if (p.grad().defined()) total += p.grad().pow(2).sum().item<double>();
  const double norm = std::sqrt(total);
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

// Text encoder and DiT jointly with the rectified-flow objective the Wan
// samplers expect: x_t = (1 - s) x0 + s e, target e - x0, timestep
// int(1000 s); captions (random language, template, synonyms) dropped to ""
// with probability 0.1 for classifier-free guidance. Sigmas are logit-normal,
// or with probability `shifted_fraction` shift-3 uniform (3u / (1 + 2u)),
// which reaches the high-noise end where sampling starts. AdamW, gradient
// clipping at 1, EMA of the weights, returned as (text encoder, DiT).
std::pair<std::map<std::string, at::Tensor>, std::map<std::string, at::Tensor>> train_flow(
    const UMT5Encoder& t5, const WanDiT& dit, Weights& tw, Weights& dw, const Tokenizer& tokenizer, const at::Tensor& latents,
    const std::vector<world::Scene>& scenes, std::mt19937& rng, LossLog& log, int steps, int batch, double lr_max, double ema,
    int64_t text_len, float shifted_fraction, int warmup, bool decay) {
  std::vector<at::Tensor> params = values(tw.parameters());
  for (auto& p : values(dw.parameters())) params.push_back(p);
  std::map<std::string, at::Tensor> ema_t5, ema_dit;
  for (const auto& [n, p] : tw.parameters()) ema_t5[n] = p.detach().clone();
  for (const auto& [n, p] : dw.parameters()) ema_dit[n] = p.detach().clone();
  int64_t n_params = 0;
  for (auto& p : params) n_params += p.numel();
  std::fprintf(stderr, "text encoder + DiT: %lld parameters\n", static_cast<long long>(n_params));
  const double t0 = now_s();
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr_max).weight_decay(0.01));
  std::uniform_int_distribution<int> pick(0, static_cast<int>(scenes.size()) - 1);
  std::uniform_real_distribution<float> u01(0, 1);
  const int64_t seq_len = latents.size(2) * latents.size(3) / 2 * latents.size(4) / 2;
  for (int step = 0; step < steps; ++step) {
    double lr = lr_max;
    if (step < warmup) {
      lr = lr_max * (step + 1) / warmup;
    } else if (decay) {
      const double p = double(step - warmup) / std::max(1, steps - warmup);
      lr = lr_max * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p)));
    }
    set_lr(opt, lr);
    std::vector<int64_t> ids, mask, lens, ts;
    std::vector<at::Tensor> x0s;
    for (int b = 0; b < batch; ++b) {
      const int i = pick(rng);
      const auto lang = u01(rng) < 0.5f ? world::Language::English : world::Language::German;
      const std::string text = u01(rng) < 0.1f ? std::string() : world::caption(scenes[i], lang, rng);
      Tokens tk = tokenizer.encode(text, text_len);
      ids.insert(ids.end(), tk.ids.begin(), tk.ids.end());
      mask.insert(mask.end(), tk.mask.begin(), tk.mask.end());
      lens.push_back(tk.length);
      x0s.push_back(latents[i]);
    }
    at::Tensor x0 = at::stack(x0s);
    at::Tensor sigma = at::sigmoid(at::randn({batch}));
    if (shifted_fraction > 0) {
      for (int b = 0; b < batch; ++b)
        if (u01(rng) < shifted_fraction) {
          const float u = u01(rng);
          sigma[b] = 3 * u / (1 + 2 * u);
        }
    }
    for (int b = 0; b < batch; ++b) ts.push_back(static_cast<int64_t>(sigma[b].item<float>() * 1000));
    at::Tensor s = sigma.view({-1, 1, 1, 1, 1});
    at::Tensor noise = at::randn_like(x0);
    at::Tensor xt = (1 - s) * x0 + s * noise;
    at::Tensor ctx = t5.forward(at::tensor(ids).view({batch, -1}), at::tensor(mask).view({batch, -1}));
    std::vector<at::Tensor> xs, cs;
    for (int b = 0; b < batch; ++b) {
      xs.push_back(xt[b]);
      cs.push_back(ctx[b].slice(0, 0, lens[b]));
    }
    at::Tensor v = at::stack(dit.forward(xs, ts, cs, seq_len));
    at::Tensor loss = (v - (noise - x0)).pow(2).mean();
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step();
    {
      at::NoGradGuard ng;
      for (auto& [n, p] : tw.parameters()) ema_t5[n].mul_(ema).add_(p.detach(), 1 - ema);
      for (auto& [n, p] : dw.parameters()) ema_dit[n].mul_(ema).add_(p.detach(), 1 - ema);
    }
    log.add("dit", step, loss.item<float>(), lr);
    if (step % 50 == 0) std::fprintf(stderr, "dit %d/%d loss %.4f lr %.2e (%.0fs)\n", step, steps, loss.item<float>(), lr, now_s() - t0);
  }
  return {ema_t5, ema_dit};
}

Json train(const Options& o) {
  fs::create_directories(o.out);
  const std::string work = o.out + "/.train";
  fs::create_directories(work);
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  at::manual_seed(o.seed);
  LossLog log(o.out + "/training_loss.csv");
  Json report = {{"seed", o.seed}, {"threads", at::get_num_threads()}};

  // 1. Tokenizer: sentencepiece on captions of training scenes, T5 ids.
  double t0 = now_s();
  {
    std::ofstream corpus(work + "/corpus.txt");
    for (int i = 0; i < 20000; ++i) {
      world::Scene s = world::random_scene(rng, false);
      corpus << world::caption(s, i % 2 ? world::Language::German : world::Language::English, rng) << '\n';
    }
  }
  train_sentencepiece(concat("--input=", work, "/corpus.txt --model_prefix=", o.out, "/tokenizer --vocab_size=", o.vocab,
                             " --model_type=unigram --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1",
                             " --byte_fallback=true --hard_vocab_limit=false --num_threads=1 --minloglevel=2",
                             " --input_sentence_size=0 --shuffle_input_sentence=false"));
  fs::remove(o.out + "/tokenizer.vocab");
  Tokenizer tokenizer(o.out + "/tokenizer.model");
  report["tokenizer"] = {{"vocab", tokenizer.vocab_size()}, {"seconds", now_s() - t0}};
  std::fprintf(stderr, "tokenizer: %lld pieces\n", static_cast<long long>(tokenizer.vocab_size()));

  // 2. VAE: reconstruction + KL on random crops of short clips.
  WanVAEConfig vcfg;
  vcfg.dim = o.vae_dim;
  vcfg.latents_mean.assign(16, 0.0f);
  vcfg.latents_std.assign(16, 1.0f);
  Weights vinit = Weights::initializer(o.seed + 1);
  WanVAE vae(vcfg, vinit);
  {
    // Start the posterior narrow (log-variance bias -8): with sigma ~ 1 the
    // decoder first sees mostly noise and reconstruction stalls for long.
    at::NoGradGuard ng;
    vinit.parameters().at("conv1.bias").slice(0, 16).fill_(-8.0);
  }
  {
    t0 = now_s();
    torch::optim::AdamW opt(values(vinit.parameters()), torch::optim::AdamWOptions(1e-3).weight_decay(0.0));
    for (int step = 0; step < o.vae_steps; ++step) {
      set_lr(opt, o.vae_lr * std::min(1.0, (step + 1) / 50.0) * (step > o.vae_steps * 0.8 ? 0.3 : 1.0));
      at::Tensor x = render_batch(rng, o.vae_batch, o.size, o.frames, 64, nullptr);
      auto [mu, log_var] = vae.encode_moments(x);
      log_var = log_var.clamp(-30, 20);
      at::Tensor z = mu + at::exp(0.5 * log_var) * at::randn_like(mu);
      at::Tensor recon = vae.decode_raw(z);
      at::Tensor rec = (recon - x).pow(2).mean() + 0.1 * (recon - x).abs().mean();
      at::Tensor kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).mean();
      at::Tensor loss = rec + 1e-4 * kl;
      opt.zero_grad();
      loss.backward();
      opt.step();
      log.add("vae", step, rec.item<float>(), o.vae_lr);
      if (step % 50 == 0) std::fprintf(stderr, "vae %d/%d rec %.5f kl %.3f (%.0fs)\n", step, o.vae_steps, rec.item<float>(), kl.item<float>(), now_s() - t0);
    }
    report["vae"] = {{"steps", o.vae_steps}, {"final_loss", log.series.back().second.back()}, {"seconds", now_s() - t0}};
  }

  // 3. Latents of the training clips; their per-channel statistics become
  //    the VAE's latent normalisation (as Wan's mean/std).
  t0 = now_s();
  std::vector<world::Scene> scenes;
  at::Tensor latents;
  {
    at::NoGradGuard ng;
    std::vector<at::Tensor> mus;
    for (int i = 0; i < o.clips; i += 2) {  // small batches: large ones thrash memory
      at::Tensor x = render_batch(rng, std::min(2, o.clips - i), o.size, o.frames, 0, &scenes);
      mus.push_back(vae.encode_moments(x).first);
    }
    latents = at::cat(mus);
    at::Tensor mean = latents.mean({0, 2, 3, 4}), std = latents.std({0, 2, 3, 4});
    for (int c = 0; c < 16; ++c) {
      vcfg.latents_mean[c] = mean[c].item<float>();
      vcfg.latents_std[c] = std[c].item<float>();
    }
    latents = (latents - mean.view({1, 16, 1, 1, 1})) / std.view({1, 16, 1, 1, 1});
  }
  save(o.out + "/vae.safetensors", vinit.parameters(), "vae");
  report["latents"] = {{"clips", o.clips}, {"shape", latents.sizes().vec()}, {"seconds", now_s() - t0}};
  std::fprintf(stderr, "latents %s in %.0fs\n", c10::str(latents.sizes()).c_str(), now_s() - t0);

  // 4. Text encoder and DiT jointly, rectified flow: x_t = (1 - s) x0 + s e,
  //    target e - x0, timestep int(1000 s); captions dropped to "" sometimes.
  UMT5Config tcfg;
  tcfg.vocab = tokenizer.vocab_size();
  tcfg.dim = tcfg.dim_attn = o.t5_dim;
  tcfg.dim_ffn = o.t5_ffn;
  tcfg.num_heads = o.t5_heads;
  tcfg.num_layers = o.t5_layers;
  WanDiTConfig dcfg;
  dcfg.dim = o.dit_dim;
  dcfg.ffn_dim = o.dit_ffn;
  dcfg.num_heads = o.dit_heads;
  dcfg.num_layers = o.dit_layers;
  dcfg.text_dim = o.t5_dim;
  dcfg.text_len = o.text_len;
  Weights tinit = Weights::initializer(o.seed + 2), dinit = Weights::initializer(o.seed + 3);
  UMT5Encoder t5(tcfg, tinit);
  WanDiT dit(dcfg, dinit);
  t0 = now_s();
  auto [ema_t5, ema_dit] = train_flow(t5, dit, tinit, dinit, tokenizer, latents, scenes, rng, log, o.dit_steps, o.dit_batch,
                                      o.lr, o.ema, o.text_len, /*shifted_fraction=*/0.0f, std::min(200, o.dit_steps / 10),
                                      /*decay=*/true);
  report["dit"] = {{"steps", o.dit_steps}, {"batch", o.dit_batch}, {"final_loss_mean100", tail_mean(log)}, {"seconds", now_s() - t0}};
  save(o.out + "/text_encoder.safetensors", ema_t5, "text_encoder");
  save(o.out + "/transformer.safetensors", ema_dit, "transformer");

  // 5. The manifest.
  Json manifest = {
      {"kino_manifest", 1},
      {"name", "kino-tiny"},
      {"family", "wan2.1"},
      {"description", "kino's embedded default: the Wan2.1 architecture at tiny size, trained by kino-train on a synthetic world of flat shapes"},
      {"tokenizer", "tokenizer.model"},
      {"text_encoder",
       {{"weights", "text_encoder.safetensors"},
        {"config", {{"vocab", tcfg.vocab}, {"dim", tcfg.dim}, {"dim_attn", tcfg.dim_attn}, {"dim_ffn", tcfg.dim_ffn},
                    {"num_heads", tcfg.num_heads}, {"num_layers", tcfg.num_layers}, {"num_buckets", tcfg.num_buckets}, {"shared_pos", false}}}}},
      {"transformer",
       {{"weights", "transformer.safetensors"},
        {"config", {{"patch_size", dcfg.patch_size}, {"text_len", dcfg.text_len}, {"in_dim", 16}, {"out_dim", 16}, {"dim", dcfg.dim},
                    {"ffn_dim", dcfg.ffn_dim}, {"freq_dim", dcfg.freq_dim}, {"text_dim", dcfg.text_dim}, {"num_heads", dcfg.num_heads},
                    {"num_layers", dcfg.num_layers}, {"qk_norm", true}, {"cross_attn_norm", true}, {"eps", 1e-6}}}}},
      {"vae",
       {{"weights", "vae.safetensors"},
        {"config", {{"dim", vcfg.dim}, {"z_dim", 16}, {"dim_mult", vcfg.dim_mult}, {"num_res_blocks", vcfg.num_res_blocks},
                    {"temperal_downsample", vcfg.temporal_downsample}, {"latents_mean", vcfg.latents_mean}, {"latents_std", vcfg.latents_std}}}}},
      {"defaults",
       {{"sampler", "unipc"}, {"steps", 20}, {"cfg", 4.0}, {"shift", 3.0}, {"width", o.size}, {"height", o.size},
        {"frames", o.frames}, {"fps", 8}, {"negative_prompt", ""}}}};
  std::ofstream(o.out + "/kino.json") << manifest.dump(2) << '\n';
  log.csv.flush();
  plot_losses(log, o.out + "/training_loss.png");
  fs::remove_all(work);
  report["total_seconds"] = now_s() - log.start;
  return report;
}

struct FinetuneOptions {
  std::string model = "models/kino-tiny";
  uint64_t seed = 20261123;
  int vae_steps = 200, clips = 600, dit_steps = 500, dit_batch = 16;
  double lr = 1.5e-4, ema = 0.995;
};

// Second stage on a trained model, fixing two gaps of the first recipe:
// the VAE decoder trained only on 2-latent-frame windows (its temporal
// caches never held real frames), and sigmas drawn logit-normal, which
// almost never reach the high-noise end where sampling starts. The decoder
// is tuned on full 17-frame windows with the encoder frozen (the latent space
// and the DiT's data stay the same); the DiT and text encoder continue with
// half of the sigmas from a shift-3 uniform schedule.
Json finetune(const FinetuneOptions& f) {
  const std::string dir = f.model;
  std::mt19937 rng(static_cast<uint32_t>(f.seed));
  at::manual_seed(f.seed);
  LossLog log(dir + "/finetune_loss.csv");
  Json report = {{"seed", f.seed}};
  const ModelManifest m = load_manifest(dir);
  const WanVAEConfig vcfg = vae_config(m);
  Weights vw(m.vae, at::kFloat, /*trainable=*/true);
  WanVAE vae(vcfg, vw);
  vw.finish();
  std::vector<at::Tensor> dec_params;
  for (const auto& [name, t] : vw.parameters()) {
    const bool decoder = name.rfind("decoder.", 0) == 0 || name.rfind("conv2.", 0) == 0;
    t.set_requires_grad(decoder);
    if (decoder) dec_params.push_back(t);
  }
  double t0 = now_s();
  {
    torch::optim::AdamW opt(dec_params, torch::optim::AdamWOptions(5e-4).weight_decay(0.0));
    for (int step = 0; step < f.vae_steps; ++step) {
      at::Tensor x = render_batch(rng, 2, 128, 17, 64, nullptr, 17);
      at::Tensor mu;
      {
        at::NoGradGuard ng;
        mu = vae.encode_moments(x).first;
      }
      // decode_raw expects normalised latents.
      at::Tensor z = (mu - at::tensor(vcfg.latents_mean).view({1, 16, 1, 1, 1})) / at::tensor(vcfg.latents_std).view({1, 16, 1, 1, 1});
      at::Tensor recon = vae.decode_raw(z);
      at::Tensor loss = (recon - x).pow(2).mean() + 0.1 * (recon - x).abs().mean();
      opt.zero_grad();
      loss.backward();
      opt.step();
      log.add("vae_decoder", step, loss.item<float>(), 5e-4);
      if (step % 25 == 0) std::fprintf(stderr, "decoder %d/%d loss %.5f (%.0fs)\n", step, f.vae_steps, loss.item<float>(), now_s() - t0);
    }
  }
  report["vae_decoder"] = {{"steps", f.vae_steps}, {"final_loss", log.series.back().second.back()}, {"seconds", now_s() - t0}};

  t0 = now_s();
  std::vector<world::Scene> scenes;
  at::Tensor latents;
  {
    at::NoGradGuard ng;
    std::vector<at::Tensor> lat;
    for (int i = 0; i < f.clips; i += 2) {
      at::Tensor x = render_batch(rng, std::min(2, f.clips - i), 128, 17, 0, &scenes);
      lat.push_back(vae.encode_moments(x).first);
    }
    latents = (at::cat(lat) - at::tensor(vcfg.latents_mean).view({1, 16, 1, 1, 1})) / at::tensor(vcfg.latents_std).view({1, 16, 1, 1, 1});
  }
  report["latents"] = {{"clips", f.clips}, {"seconds", now_s() - t0}};
  std::fprintf(stderr, "latents in %.0fs\n", now_s() - t0);

  Tokenizer tokenizer(m.tokenizer);
  const UMT5Config tcfg = umt5_config(m);
  const WanDiTConfig dcfg = dit_config(m);
  Weights tw(m.text_encoder, at::kFloat, true), dw(m.transformer, at::kFloat, true);
  UMT5Encoder t5(tcfg, tw);
  WanDiT dit(dcfg, dw);
  tw.finish();
  dw.finish();
  t0 = now_s();
  auto [ema_t5, ema_dit] = train_flow(t5, dit, tw, dw, tokenizer, latents, scenes, rng, log, f.dit_steps, f.dit_batch, f.lr,
                                      f.ema, dcfg.text_len, /*shifted_fraction=*/0.5f, /*warmup=*/50, /*decay=*/false);
  save(m.text_encoder, ema_t5, "text_encoder");
  save(m.transformer, ema_dit, "transformer");
  report["dit"] = {{"steps", f.dit_steps}, {"final_loss_mean100", tail_mean(log)}, {"seconds", now_s() - t0}};
  save(m.vae, vw.parameters(), "vae");
  log.csv.flush();
  plot_losses(log, dir + "/finetune_loss.png");
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino-train: train and evaluate kino-tiny"};
  app.require_subcommand(1);
  Options o;
  auto* tr = app.add_subcommand("train", "Train kino-tiny from scratch");
  tr->add_option("--out", o.out, "Output model folder")->capture_default_str();
  tr->add_option("--seed", o.seed)->capture_default_str();
  tr->add_option("--threads", o.threads, "CPU threads (0: all)");
  tr->add_option("--vae-steps", o.vae_steps)->capture_default_str();
  tr->add_option("--vae-lr", o.vae_lr)->capture_default_str();
  tr->add_option("--vae-dim", o.vae_dim)->capture_default_str();
  tr->add_option("--clips", o.clips, "Training clips (latents)")->capture_default_str();
  tr->add_option("--dit-steps", o.dit_steps)->capture_default_str();
  tr->add_option("--dit-batch", o.dit_batch)->capture_default_str();
  tr->add_option("--dit-dim", o.dit_dim)->capture_default_str();
  tr->add_option("--dit-layers", o.dit_layers)->capture_default_str();
  tr->add_option("--lr", o.lr)->capture_default_str();

  FinetuneOptions fo;
  auto* ft = app.add_subcommand("finetune", "Second training stage on a trained model (see finetune())");
  ft->add_option("--model", fo.model)->capture_default_str();
  ft->add_option("--seed", fo.seed)->capture_default_str();
  ft->add_option("--vae-steps", fo.vae_steps)->capture_default_str();
  ft->add_option("--clips", fo.clips)->capture_default_str();
  ft->add_option("--dit-steps", fo.dit_steps)->capture_default_str();
  ft->add_option("--threads", o.threads);

  auto* ev = app.add_subcommand("eval", "Measure prompt following from pixels");
  std::string model = "models/kino-tiny", json_out;
  int per_group = 24;
  int steps = 0;
  double cfg = -1;
  ev->add_option("--model", model)->capture_default_str();
  ev->add_option("--per-group", per_group, "Prompts per group (English, German, held-out)")->capture_default_str();
  ev->add_option("--json", json_out, "Write the full report here");
  ev->add_option("--steps", steps, "Override the model's default steps");
  ev->add_option("--cfg", cfg, "Override the model's default guidance");
  ev->add_option("--threads", o.threads);
  CLI11_PARSE(app, argc, argv);

  at::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency()));
  try {
    if (*tr) {
      Json report = train(o);
      std::ofstream(o.out + "/training_report.json") << report.dump(2) << '\n';
      std::printf("%s\n", report.dump(2).c_str());
    } else if (*ft) {
      Json report = finetune(fo);
      std::ofstream(fo.model + "/finetune_report.json") << report.dump(2) << '\n';
      std::printf("%s\n", report.dump(2).c_str());
    } else {
      Pipeline p(load_manifest(model), RuntimeOptions{"cpu", "float32", o.threads});
      GenerationRequest base;
      if (steps > 0) base.steps = steps;
      if (cfg >= 0) base.cfg = cfg;
      const double t0 = now_s();
      EvalReport r = evaluate(p, make_eval_cases(per_group, 7), base);
      std::printf("%s(%d prompts in %.0f s)\n", r.table().c_str(), 3 * per_group, now_s() - t0);
      if (!json_out.empty()) std::ofstream(json_out) << r.to_json().dump(2) << '\n';
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "kino-train: %s\n", e.what());
    return 1;
  }
  return 0;
}
