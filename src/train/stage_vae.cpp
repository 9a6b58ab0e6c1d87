// kino-train's VAE stages and the latents of the training clips.
#include "train/tiny.h"

namespace kino::tiny {

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

void check_latent_cache(const std::string& path, int clips) {
  if (!fs::exists(path)) return;
  const TensorSet cache = TensorSet::open(path);
  const TensorView* latents = cache.find("latents");
  if (!latents || latents->shape.empty()) throw Error(concat(path, ": no 'latents' tensor (not a kino-train latent cache)"));
  if (latents->shape[0] != clips)
    throw Error(concat(path, ": the latent cache holds ", latents->shape[0], " clips, --clips asks for ", clips,
                       " (use another --work folder, or delete the cache)"));
}

}  // namespace kino::tiny
