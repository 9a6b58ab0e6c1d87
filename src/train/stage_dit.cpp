// kino-train's DiT stage: the rectified-flow objective.
#include "train/tiny.h"

namespace kino::tiny {

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
    std::vector<int64_t> ids, mask, lens;
    std::vector<double> ts;  // whole timesteps, as the samplers give
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
      ts.push_back(static_cast<double>(static_cast<int64_t>(sigma * 1000)));
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

}  // namespace kino::tiny
