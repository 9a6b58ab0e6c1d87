// kino-train's text stages: the tokenizer, the text encoder's pretraining.
#include "train/tiny.h"

namespace kino::tiny {

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

}  // namespace kino::tiny
