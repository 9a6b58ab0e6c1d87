// kino-train: trains kino-tiny from scratch on the synthetic world with the
// same modules the pipeline runs (umT5 encoder, Wan DiT, Wan VAE), and
// evaluates prompt following from pixels.
//
//   kino-train train   --out models/kino-tiny
//   kino-train decoder --model build/kino-tiny
//   kino-train eval  --model models/kino-tiny --per-group 48
#include <CLI/CLI.hpp>

#include "train/tiny.h"

using namespace kino;
using namespace kino::tiny;

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
  std::string model = "models/kino-tiny", json_out, cache;
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
  ev->add_option("--cache", cache, "Step caching, as kino generate --cache");
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
      RuntimeOptions runtime;
      runtime.device = o.device;
      runtime.dtype = "float32";
      runtime.threads = o.threads;
      Pipeline p(load_manifest(model), runtime);
      GenerationRequest base;
      if (steps > 0) base.steps = steps;
      if (cfg >= 0) base.cfg = cfg;
      if (shift > 0) base.shift = shift;
      if (!cache.empty()) base.cache = cache;
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
