// kino-train's runs: training from scratch, decoder and expert continuations, the VAE's evaluation.
#include "train/tiny.h"

namespace kino::tiny {

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

}  // namespace kino::tiny
