// kino-train's stages (kino-tiny: tokenizer, VAE, latents, text encoder,
// DiT, decoder and expert continuations, evaluations), shared by its files:
// tiny_common.cpp (options' helpers, logs, clips, checkpoints, records),
// stage_text.cpp, stage_vae.cpp, stage_dit.cpp, runs.cpp (the runs made of
// the stages) and train_tiny.cpp (the command line).
#pragma once
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>

#include "kino/atomic_file.h"
#include "kino/error.h"
#include "kino/video_writer.h"
#include "loading/tensor_file.h"
#include "request/settings.h"
#include "text/tokenizer.h"
#include "text/umt5.h"
#include "train/training.h"
#include "wan/dit.h"
#include "wan/generator.h"
#include "wan/vae.h"
#include "world/evaluate.h"
#include "world/world.h"

namespace kino::tiny {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace kino::train;

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
world::Omit draw_omit(const Options& o, std::mt19937& rng);

double now_s();

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
void plot_losses(const LossLog& log, const std::string& path);

// A scene's attributes as class indices: colour, background, shape, size
// (1: large), motion (the latent cache's table and the text encoder's labels).
std::array<int64_t, 5> scene_attributes(const world::Scene& s);

// Clips of random training scenes as [B, 3, F, H, W] in [-1, 1] on `device`. `crop` > 0
// cuts a random crop x crop window of every frame (the VAE is convolutional
// and trains on such crops: same motion, less compute). `still`: scenes
// without motion.
at::Tensor render_batch(std::mt19937& rng, at::Device device, int batch, int size, int frames, int crop,
                        std::vector<world::Scene>* scenes, bool still = false);

void set_lr(torch::optim::AdamW& opt, double lr);

void save(const std::string& path, const std::map<std::string, at::Tensor>& params, const std::string& component);

// Scales all gradients so that their joint L2 norm is at most max_norm
// (one device synchronisation per call).
void clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

std::vector<at::Tensor> values(const std::map<std::string, at::Tensor>& m);

float tail_mean(const LossLog& log);

// The text encoder alone, before the DiT: from the mean of its outputs over
// the caption's tokens, linear heads (training only, not saved) classify the
// scene's object colour, background, shape, size and motion (cross-entropy).
// Real Wan models start from a pretrained umT5; kino-tiny has none, and an
// encoder trained jointly with the DiT stays a bag of words (TRAINING.md,
// "Earlier findings"). The heads make every attribute, bound to its role,
// linearly readable before the DiT starts. Returns the accuracy per
// attribute on captions of the held-out combinations.
Json pretrain_text_encoder(const UMT5Encoder& t5, const Weights& tw, const Tokenizer& tokenizer, std::mt19937& rng,
                           LossLog& log, const Options& o, at::Device device);

using Params = std::map<std::string, at::Tensor>;

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
void train_flow(const UMT5Encoder& t5, const WanDiT& dit, const Weights& dw, const Tokenizer& tokenizer,
                const at::Tensor& latents, const at::Tensor& object_masks, const std::vector<world::Scene>& scenes,
                std::mt19937& rng, LossLog& log, const Options& o, const std::function<void(const Params&)>& checkpoint);

// Sentencepiece on captions of training scenes, with T5's special ids.
void train_tokenizer(const Options& o, const std::string& work, std::mt19937& rng);

// One step of the VAE's phase 3 (see train_vae): the decoder alone, with the
// reconstruction terms o.decoder_loss.
void train_decoder_step(const Options& o, at::Device device, std::mt19937& rng, LossLog& log, const WanVAE& vae,
                        torch::optim::AdamW& opt, int step, double lr);

// The VAE, in three phases on random spatial crops of whole clips (all
// `frames`, not short windows, so that the causal caches of encoder and
// decoder see what they hold at inference: the first frame alone, then chunks
// of 4 frames continuing from real history):
//  1. object-weighted reconstruction (object_weighted_rec) + 1e-4 KL, `vae_steps`;
//  2. the same plus temporal consistency, `vae_consistency_steps`: the last
//     clip of every batch is still, and the variance of its latent over time
//     (relative to its total variance) is penalised, so that the first
//     latent frame, encoded alone, gets the code of the frames after it
//     (why: TRAINING.md, "Earlier findings"). Phase 2 starts from a VAE
//     that reconstructs: from scratch the penalty wins;
//  3. the decoder alone, `vae_decoder_steps`, with the encoder frozen (the
//     latent space, and so the DiT's data, stay as they are): sharper object
//     colours for the latents the DiT learns.
// `pretrained`: phase 1 was done (the weights came from a file).
void train_vae(const Options& o, at::Device device, std::mt19937& rng, LossLog& log, WanVAE& vae, const Weights& w,
               bool pretrained);

// Posterior means of `clips` random training clips, their object masks at
// latent resolution (latent_object_mask) and their scenes' attributes
// (colour, background, shape, large, motion) as a [clips, 5] int64 table,
// cached in `path` so a resumed run need not encode again.
struct TrainingLatents {
  at::Tensor latents, object_masks;
  std::vector<world::Scene> scenes;
};
TrainingLatents encode_latents(const Options& o, at::Device device, std::mt19937& rng, const WanVAE& vae,
                               const WanVAEConfig& vcfg, const std::string& path);

Json manifest_json(const Options& o, const UMT5Config& tcfg, const WanDiTConfig& dcfg, const WanVAEConfig& vcfg);

// The fields every run's report starts with.
Json run_record(const std::string& run, const Options& o, at::Device device);

// The number of the next run named `prefix`N in `folder`: one past the
// highest N of any `prefix`N_* file there, so a gap left by a deleted or lost
// log is never filled. It names the run's loss log, plot and report
// ("resume1", "decoder1", ...) so that no run overwrites the record of an
// earlier one, and offsets the seed so that each run draws other batches.
int next_run(const std::string& folder, const std::string& prefix);

// Refuses a latent cache of another clip count than --clips (checked before
// the run writes anything).
void check_latent_cache(const std::string& path, int clips);

// All stages from scratch into o.out: tokenizer, VAE, latents of the training
// clips (cached in .train/), text encoder + DiT. With o.resume the first three
// come from o.out and the text encoder and DiT continue from its weights.
// The model folder is complete (manifest, all weights) from the first DiT
// checkpoint on, so a checkpoint can be tried with `kino generate`.
Json run_training(const Options& o);

// More of the VAE's phase 3 on a finished model, in place: the decoder of
// o.out's VAE trains o.vae_decoder_steps more steps (peak lr o.vae_lr after a
// 20-step warmup for the new optimiser's moments, cosine decay to a tenth). The encoder, and so the latent space the
// DiT learned and the manifest's latent statistics, stay as they are. The
// weights are written every o.checkpoint_every steps and at the end; the run
// is logged as decoderN_loss.csv/.png and decoderN_report.json.
Json continue_decoder(const Options& o);

// A low-noise expert for a finished model (Wan2.2 A14B's mixture of experts
// over time, at kino-tiny size): a copy of o.out's transformer (or its
// expert, if it has one) continues for o.dit_steps steps on the timesteps
// below o.sigma_max * 1000 only, with the frozen text encoder, on the cached
// latents of o.clips clips; the model becomes a wan2.2 two-expert model whose
// first transformer keeps the steps above that boundary. Logged as expertN_*.
Json train_expert(const Options& o);

// The VAE's ceiling on prompt following: random scenes (a third from the
// held-out combinations) through encode and decode, measured from pixels as
// the evaluation measures generated clips. No DiT can render what the VAE
// cannot reproduce. `latent_noise` > 0 adds Gaussian noise of that standard
// deviation to the normalised latents before decoding: how well the decoder
// tolerates a DiT's errors. `strip`: every fourth frame of the first four
// clips, one row each, as a PNG.
void eval_vae(const std::string& model, const std::string& device, int clips, int size, int frames, double latent_noise,
              const std::string& strip);

}  // namespace kino::tiny
