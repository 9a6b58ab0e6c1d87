#include "text/umt5.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nn/nn.h"

namespace kino {

int64_t t5_relative_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance) {
  // T5RelativeEmbedding._relative_position_bucket, bidirectional; the log is
  // taken in float32 and truncated toward zero, as torch does.
  const int64_t half = num_buckets / 2;
  int64_t bucket = rel > 0 ? half : 0;
  const int64_t r = rel < 0 ? -rel : rel;
  const int64_t max_exact = half / 2;
  if (r < max_exact) return bucket + r;
  const float scaled = std::log(static_cast<float>(r) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                       static_cast<float>(half - max_exact);
  int64_t large = max_exact + static_cast<int64_t>(scaled);
  return bucket + std::min(large, half - 1);
}

template <typename F>
void UMT5Encoder::parameters(F&& f) {
  const int64_t d = cfg_.dim, a = cfg_.dim_attn, ff = cfg_.dim_ffn;
  f("token_embedding.weight", token_embedding_, cfg_.vocab, d);
  if (cfg_.shared_pos) f("pos_embedding.embedding.weight", shared_pos_embedding_, std::vector<int64_t>{cfg_.num_buckets, cfg_.num_heads});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    f(p + "norm1.weight", b.norm1, std::vector<int64_t>{d});
    f(p + "attn.q", b.q, d, a);
    f(p + "attn.k", b.k, d, a);
    f(p + "attn.v", b.v, d, a);
    f(p + "attn.o", b.o, a, d);
    f(p + "norm2.weight", b.norm2, std::vector<int64_t>{d});
    f(p + "ffn.gate.0", b.gate, d, ff);
    f(p + "ffn.fc1", b.fc1, d, ff);
    f(p + "ffn.fc2", b.fc2, ff, d);
    if (!cfg_.shared_pos) f(p + "pos_embedding.embedding.weight", b.pos_embedding, std::vector<int64_t>{cfg_.num_buckets, cfg_.num_heads});
  }
  f("norm.weight", final_norm_, std::vector<int64_t>{d});
}

UMT5Encoder::UMT5Encoder(const UMT5Config& cfg, Weights& w) : cfg_(cfg) {
  if (cfg.num_heads < 1 || cfg.dim_attn % cfg.num_heads)
    throw Error(concat("umT5 dim_attn ", cfg.dim_attn, " is not a multiple of num_heads ", cfg.num_heads));
  blocks_.resize(static_cast<size_t>(std::max<int64_t>(0, cfg.num_layers)));
  parameters(nn::overloaded{
      [&](const std::string& name, at::Tensor& t, const std::vector<int64_t>& shape) { t = w.take(name, shape); },
      [&](const std::string& name, nn::Linear& l, int64_t in, int64_t out) { l = nn::Linear(w, name, in, out, false); },
      [&](const std::string& name, nn::Embedding& e, int64_t rows, int64_t cols) { e = nn::Embedding(w, name, rows, cols); }});
}

void UMT5Encoder::to(const at::TensorOptions& options) {
  parameters(nn::overloaded{[&](const std::string&, at::Tensor& t, const std::vector<int64_t>&) { t = t.to(options); },
                            [&](const std::string&, auto& layer, int64_t, int64_t) { layer.to(options); }});
}

void UMT5Encoder::pin_memory() {
  parameters(nn::overloaded{[](const std::string&, at::Tensor& t, const std::vector<int64_t>&) { t = t.pin_memory(); },
                            [](const std::string&, auto& layer, int64_t, int64_t) { layer.pin_memory(); }});
}

at::Tensor UMT5Encoder::position_bias(const at::Tensor& table, int64_t len) const {
  std::vector<int64_t> buckets(static_cast<size_t>(len * len));
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = 0; j < len; ++j)
      buckets[i * len + j] = t5_relative_bucket(j - i, cfg_.num_buckets, cfg_.max_distance);
  at::Tensor idx = at::tensor(buckets, at::kLong).view({len, len}).to(table.device());
  return at::embedding(table, idx).permute({2, 0, 1}).unsqueeze(0);  // [1, H, Lq, Lk]
}

at::Tensor UMT5Encoder::forward(const at::Tensor& ids, const at::Tensor& mask, Trace* trace) const {
  const int64_t B = ids.size(0), L = ids.size(1), H = cfg_.num_heads, Dh = cfg_.dim_attn / H;
  constexpr double kEps = 1e-6;
  at::Tensor x = token_embedding_(ids);
  if (trace) (*trace)["emb"] = x;

  // Masked keys get float32's lowest value added to their logits (t5.py).
  at::Tensor key_mask = mask.to(x.device()).view({B, 1, 1, L}) == 0;
  const float lowest = std::numeric_limits<float>::lowest();
  at::Tensor shared_bias = cfg_.shared_pos ? position_bias(shared_pos_embedding_, L) : at::Tensor();

  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    at::Tensor pos = cfg_.shared_pos ? shared_bias : position_bias(b.pos_embedding, L);
    if (trace) (*trace)["pos_bias" + std::to_string(i)] = pos;
    at::Tensor bias = pos.expand({B, H, L, L}).to(at::kFloat).masked_fill(key_mask, lowest);

    at::Tensor h = nn::rms_norm(x, b.norm1, kEps);
    auto heads = [&](const at::Tensor& t) { return t.view({B, L, H, Dh}).transpose(1, 2); };
    at::Tensor q = heads(b.q(h)), k = heads(b.k(h)), v = heads(b.v(h));
    at::Tensor attn = nn::attention(q, k, v, bias, 1.0);  // T5: no 1/sqrt(d) scaling
    attn = b.o(attn.transpose(1, 2).reshape({B, L, H * Dh}));
    x = x + attn;
    h = nn::rms_norm(x, b.norm2, kEps);
    at::Tensor ffn = b.fc2(b.fc1(h) * nn::gelu_tanh(b.gate(h)));
    x = x + ffn;
    if (trace && i == 0) {
      (*trace)["block0_attn_out"] = attn;
      (*trace)["block0_ffn_out"] = ffn;
    }
    if (trace) (*trace)["block" + std::to_string(i) + "_out"] = x;
  }
  return nn::rms_norm(x, final_norm_, kEps);
}

}  // namespace kino
