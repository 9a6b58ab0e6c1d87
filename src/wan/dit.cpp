#include "wan/dit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "kino/error.h"
#include "kernels/fused_ops.h"

namespace kino {

namespace {

// sinusoidal_embedding_1d: [cos(t w_i), sin(t w_i)], w_i = 10000^(-i/half),
// in float64 from the integer timestep, then float32.
at::Tensor timestep_sinusoid(const std::vector<int64_t>& t, int64_t freq_dim) {
  const int64_t half = freq_dim / 2;
  at::Tensor pos = at::tensor(t, at::kLong).to(at::kDouble);
  at::Tensor w = at::pow(10000.0, -at::arange(half, at::kDouble).div(half));
  at::Tensor arg = at::outer(pos, w);
  return at::cat({at::cos(arg), at::sin(arg)}, 1).to(at::kFloat);
}

// rope_params: angle[p, k] = p / 10000^(2k / dim) for k < dim / 2, float64.
at::Tensor rope_angles(int64_t max_len, int64_t dim) {
  at::Tensor inv = 1.0 / at::pow(10000.0, at::arange(0, dim, 2, at::kDouble).div(dim));
  return at::outer(at::arange(max_len, at::kDouble), inv);
}

// A modulation table [1, n, d] plus its time projection emb ([B, n, d], or
// [B, 1, d] broadcast over the n rows), summed once. With a first-frame
// timestep the tokens marked by `first` [B, S, 1] take the rows of emb_first
// instead, and a row read is per token, [B, S, d]: made when read, since the
// six of a block at once would be [B, S, 6, d] (as model.py holds them), 2 GB
// float32 per sample at 1280x704x121 with Wan2.2 TI2V-5B.
struct Modulation {
  Modulation(const at::Tensor& table, const at::Tensor& emb, const at::Tensor& emb_first, const at::Tensor& first)
      : rows(table + emb), first_rows(first.defined() ? table + emb_first : at::Tensor()), first(first) {}
  at::Tensor row(int64_t k) const {
    const at::Tensor r = rows.narrow(1, k, 1);
    return first.defined() ? at::where(first, first_rows.narrow(1, k, 1), r) : r;
  }
  at::Tensor rows, first_rows, first;
};

}  // namespace

WanDiT::WanDiT(const WanDiTConfig& cfg, Weights& w) : cfg_(cfg) {
  const int64_t d = cfg.dim;
  if (cfg.patch_size.size() != 3) throw Error("patch_size must have 3 entries");
  if (d % cfg.num_heads != 0) throw Error(concat("dim ", d, " is not a multiple of num_heads ", cfg.num_heads));
  const int64_t patch_numel = cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2];
  patch_w_ = w.take("patch_embedding.weight", {d, cfg.in_dim, cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]});
  patch_b_ = w.take("patch_embedding.bias", {d});
  text0_ = nn::Linear(w, "text_embedding.0", cfg.text_dim, d);
  text2_ = nn::Linear(w, "text_embedding.2", d, d);
  time0_ = nn::Linear(w, "time_embedding.0", cfg.freq_dim, d);
  time2_ = nn::Linear(w, "time_embedding.2", d, d);
  time_proj_ = nn::Linear(w, "time_projection.1", d, 6 * d);
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    Block b;
    b.modulation = w.take(p + "modulation", {1, 6, d});
    for (auto [attn, name] : {std::pair<Attention*, const char*>{&b.self_attn, "self_attn"}, {&b.cross_attn, "cross_attn"}}) {
      const std::string a = p + name + ".";
      attn->q = nn::Linear(w, a + "q", d, d);
      attn->k = nn::Linear(w, a + "k", d, d);
      attn->v = nn::Linear(w, a + "v", d, d);
      attn->o = nn::Linear(w, a + "o", d, d);
      if (cfg.qk_norm) {
        attn->norm_q = w.take(a + "norm_q.weight", {d});
        attn->norm_k = w.take(a + "norm_k.weight", {d});
      }
    }
    if (cfg.cross_attn_norm) {
      b.norm3_w = w.take(p + "norm3.weight", {d});
      b.norm3_b = w.take(p + "norm3.bias", {d});
    }
    b.ffn0 = nn::Linear(w, p + "ffn.0", d, cfg.ffn_dim);
    b.ffn2 = nn::Linear(w, p + "ffn.2", cfg.ffn_dim, d);
    blocks_.push_back(std::move(b));
  }
  head_modulation_ = w.take("head.modulation", {1, 2, d});
  head_ = nn::Linear(w, "head.head", d, patch_numel * cfg.out_dim);

  // 3-axis RoPE table: head_dim split as d - 4*(d/6) (time), 2*(d/6) (rows),
  // 2*(d/6) (columns); one column per complex pair.
  const int64_t hd = d / cfg.num_heads;
  at::Tensor angles = at::cat({rope_angles(1024, hd - 4 * (hd / 6)), rope_angles(1024, 2 * (hd / 6)),
                               rope_angles(1024, 2 * (hd / 6))},
                              1);
  rope_cos_ = at::cos(angles);
  rope_sin_ = at::sin(angles);
}

// f(tensor, float32) for every weight; `float32`: one the official code keeps
// in float32 whatever the run dtype (time embedding, modulation, norms).
template <typename F>
void WanDiT::apply(F&& f) {
  auto one = [&](at::Tensor& t, bool float32) {
    if (t.defined()) t = f(t, float32);
  };
  auto lin = [&](nn::Linear& l, bool float32) {
    one(l.weight, float32);
    one(l.bias, float32);
  };
  one(patch_w_, false);
  one(patch_b_, false);
  lin(text0_, false);
  lin(text2_, false);
  for (nn::Linear* l : {&time0_, &time2_, &time_proj_}) lin(*l, true);
  for (auto& b : blocks_) {
    one(b.modulation, true);
    for (Attention* a : {&b.self_attn, &b.cross_attn}) {
      for (nn::Linear* l : {&a->q, &a->k, &a->v, &a->o}) lin(*l, false);
      one(a->norm_q, true);
      one(a->norm_k, true);
    }
    one(b.norm3_w, true);
    one(b.norm3_b, true);
    lin(b.ffn0, false);
    lin(b.ffn2, false);
  }
  one(head_modulation_, true);
  lin(head_, false);
}

void WanDiT::to(at::Device device, at::ScalarType dtype) {
  apply([&](const at::Tensor& t, bool float32) { return t.to(device, float32 ? at::kFloat : dtype); });
  rope_cos_ = rope_cos_.to(device);
  rope_sin_ = rope_sin_.to(device);
}

void WanDiT::to(at::Device device) {
  apply([&](const at::Tensor& t, bool) { return t.to(device); });
  rope_cos_ = rope_cos_.to(device);
  rope_sin_ = rope_sin_.to(device);
}

void WanDiT::pin_memory() {
  apply([](const at::Tensor& t, bool) { return t.pin_memory(); });
}

// rope_apply's rotations for a batch: per token, the unit complex numbers of
// the angles of its (frame, row, column), [B or 1, seq_len, 1, head_dim / 2];
// 1 for padding tokens, which stay untouched. complex128 (the official float64
// rotation) when the transformer runs in float32; complex64 for bf16/fp16
// runs, whose rotated q and k are rounded to 8-11 bits right after (float32
// angles are exact to 2^-24 relative). Built once per forward, shared by all
// blocks. One batch row when every sample has the same grid.
at::Tensor WanDiT::rope_table(const std::vector<std::array<int64_t, 3>>& grids, int64_t seq_len) const {
  const int64_t c = rope_cos_.size(1), ct = c - 2 * (c / 3), ch = c / 3;
  const bool same = std::all_of(grids.begin(), grids.end(), [&](const auto& g) { return g == grids[0]; });
  const at::Tensor unit = at::complex(rope_cos_, rope_sin_);  // [1024, c] complex128
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < (same ? 1 : grids.size()); ++i) {
    const auto [f, h, w] = grids[i];
    const at::Tensor tf = unit.slice(0, 0, f).slice(1, 0, ct).view({f, 1, 1, ct}).expand({f, h, w, ct});
    const at::Tensor th = unit.slice(0, 0, h).slice(1, ct, ct + ch).view({1, h, 1, ch}).expand({f, h, w, ch});
    const at::Tensor tw = unit.slice(0, 0, w).slice(1, ct + ch, c).view({1, 1, w, ch}).expand({f, h, w, ch});
    const at::Tensor t = at::cat({tf, th, tw}, -1).reshape({f * h * w, c});
    rows.push_back(at::cat({t, at::ones({seq_len - f * h * w, c}, t.options())}));
  }
  const bool f32_run = patch_w_.scalar_type() == at::kFloat;
  return at::stack(rows).unsqueeze(2).to(f32_run ? at::kComplexDouble : at::kComplexFloat);
}

std::vector<at::Tensor> WanDiT::forward(const std::vector<at::Tensor>& x, const std::vector<int64_t>& t,
                                        const std::vector<at::Tensor>& context, int64_t seq_len, Trace* trace,
                                        const std::vector<int64_t>& first_frame_t) const {
  const int64_t B = static_cast<int64_t>(x.size());
  if (B == 0 || static_cast<int64_t>(t.size()) != B || static_cast<int64_t>(context.size()) != B ||
      (!first_frame_t.empty() && static_cast<int64_t>(first_frame_t.size()) != B))
    throw Error("WanDiT: x, t, first_frame_t and context need one entry per sample");
  const int64_t d = cfg_.dim, H = cfg_.num_heads, hd = d / H, C = cfg_.in_dim;
  const int64_t pt = cfg_.patch_size[0], ph = cfg_.patch_size[1], pw = cfg_.patch_size[2];
  const at::Device device = patch_w_.device();

  // Patchify: the Conv3d with kernel = stride = patch as one matmul over
  // tokens in (f, h, w) row-major order; zero-pad to seq_len.
  std::vector<std::array<int64_t, 3>> grids;
  std::vector<at::Tensor> tokens;
  for (const auto& u : x) {
    if (u.dim() != 4 || u.size(0) != C || u.size(1) % pt || u.size(2) % ph || u.size(3) % pw)
      throw Error(concat("WanDiT: latent shape ", u.sizes(), " does not fit in_dim ", C, " and the patch size"));
    const int64_t f = u.size(1) / pt, h = u.size(2) / ph, w = u.size(3) / pw;
    grids.push_back({f, h, w});
    at::Tensor p = u.to(device).view({C, f, pt, h, ph, w, pw}).permute({1, 3, 5, 0, 2, 4, 6}).reshape({f * h * w, -1});
    at::Tensor emb = at::linear(p.to(patch_w_.scalar_type()), patch_w_.reshape({d, -1}), patch_b_);
    if (emb.size(0) > seq_len) throw Error(concat("WanDiT: ", emb.size(0), " tokens exceed seq_len ", seq_len));
    tokens.push_back(at::cat({emb, emb.new_zeros({seq_len - emb.size(0), d})}));
  }
  at::Tensor h = at::stack(tokens).to(at::kFloat);  // [B, S, d]
  if (trace && B == 1) {
    const auto [f, hh, ww] = grids[0];
    (*trace)["patch_embedding_out"] = h.slice(1, 0, f * hh * ww).transpose(1, 2).reshape({1, d, f, hh, ww});
  }

  // Time embedding e [B, d] and its projection e0 [B, 6, d]. With another
  // timestep on the first latent frame (Wan2.2: per token), the MLPs run once
  // more for that value and `first` [B, S, 1] marks the tokens of latent frame
  // 0, which take its rows (see Modulation).
  auto embed = [&](const std::vector<int64_t>& ts) {
    at::Tensor emb = time2_(at::silu(time0_(timestep_sinusoid(ts, cfg_.freq_dim).to(device))));
    return std::make_pair(emb, time_proj_(at::silu(emb)).unflatten(1, {6, d}));
  };
  at::Tensor e, e0, e_first, e0_first, first;
  std::tie(e, e0) = embed(t);
  if (!first_frame_t.empty() && first_frame_t != t) {
    std::tie(e_first, e0_first) = embed(first_frame_t);
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < B; ++i) {
      const auto& g = grids[static_cast<size_t>(i)];
      rows.push_back(at::arange(seq_len, at::kLong).lt(g[1] * g[2] * pt));
    }
    first = at::stack(rows).to(device).unsqueeze(-1);
  }
  if (trace) {  // per token, as model.py has them: [B, S, d] and [B, S, 6, d]
    (*trace)["e"] = first.defined() ? at::where(first, e_first.unsqueeze(1), e.unsqueeze(1)) : e;
    (*trace)["e0"] = first.defined() ? at::where(first.unsqueeze(-1), e0_first.unsqueeze(1), e0.unsqueeze(1)) : e0;
  }

  std::vector<at::Tensor> ctx;
  for (const auto& c : context) {
    if (c.dim() != 2 || c.size(1) != cfg_.text_dim || c.size(0) > cfg_.text_len)
      throw Error(concat("WanDiT: context shape ", c.sizes(), " must be [<= ", cfg_.text_len, ", ", cfg_.text_dim, "]"));
    at::Tensor cd = c.to(device, at::kFloat);
    ctx.push_back(at::cat({cd, cd.new_zeros({cfg_.text_len - c.size(0), cfg_.text_dim})}));
  }
  // The padded rows embed to a constant vector and are attended to: no mask.
  at::Tensor context_emb = text2_(nn::gelu_tanh(text0_(at::stack(ctx)))).to(at::kFloat);
  if (trace) (*trace)["context_embedded"] = context_emb;

  // Keys past a sample's token count are masked out of self-attention.
  at::Tensor self_bias;
  bool ragged = false;
  for (const auto& g : grids) ragged |= g[0] * g[1] * g[2] != seq_len;
  if (ragged) {
    self_bias = at::zeros({B, 1, 1, seq_len}, at::TensorOptions().device(device));
    for (int64_t i = 0; i < B; ++i) {
      const auto& g = grids[static_cast<size_t>(i)];
      self_bias[i].slice(-1, g[0] * g[1] * g[2]).fill_(-std::numeric_limits<float>::infinity());
    }
  }

  const at::Tensor rotations = rope_table(grids, seq_len);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto attend = [&](const Attention& a, const at::Tensor& q_in, const at::Tensor& kv_in, bool self, int64_t block) {
    const int64_t Lq = q_in.size(1), Lk = kv_in.size(1);
    const at::ScalarType run = a.q.weight.scalar_type();
    const at::Tensor rot = self ? rotations : at::Tensor();
    const at::Tensor q = fused::qk_norm_rope(a.q(q_in), cfg_.qk_norm ? a.norm_q : at::Tensor(), rot, H, cfg_.eps, run);
    const at::Tensor k = fused::qk_norm_rope(a.k(kv_in), cfg_.qk_norm ? a.norm_k : at::Tensor(), rot, H, cfg_.eps, run);
    const at::Tensor v = a.v(kv_in).view({B, Lk, H, hd});
    at::Tensor core =
        nn::attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), self ? self_bias : at::Tensor(), scale)
            .transpose(1, 2);
    if (trace && block == 0) {
      const std::string p = self ? "block0_self_" : "block0_cross_";
      (*trace)[p + (self ? "q_roped" : "q")] = q;
      (*trace)[p + (self ? "k_roped" : "k")] = k;
      (*trace)[p + "v"] = v;
      (*trace)[std::string(self ? "block0_self" : "block0_cross") + "_attn_core"] = core;
    }
    // In the run dtype: the residual updates below compute in float32.
    return a.o(core.reshape({B, Lq, d}));
  };

  // Each residual update is fused with the LayerNorm (and modulation) that
  // reads its result: the FFN's with the next block's norm1, the last one's
  // with the head's norm. Residuals and modulation in float32 (model.py).
  const at::Tensor none;
  const at::ScalarType run = patch_w_.scalar_type();
  // Head: modulated by the time embedding e (not e0).
  const Modulation hm{head_modulation_, e.unsqueeze(1), first.defined() ? e_first.unsqueeze(1) : none, first};
  auto block_modulation = [&](size_t i) {
    return i < blocks_.size() ? Modulation{blocks_[i].modulation, e0, e0_first, first} : hm;
  };
  Modulation m = block_modulation(0);

  at::Tensor xin = fused::norm_modulate(h, none, none, m.row(0), m.row(1), cfg_.eps, run);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    const int64_t bi = static_cast<int64_t>(i);
    at::Tensor y = attend(b.self_attn, xin, xin, true, bi);
    if (trace && i == 0) (*trace)["block0_self_attn_out"] = y;
    at::Tensor cross_in;
    if (cfg_.cross_attn_norm) {
      std::tie(h, cross_in) = fused::residual_norm_modulate(h, y, m.row(2), b.norm3_w, b.norm3_b, none, none, cfg_.eps, run);
    } else {
      h = at::addcmul(h, y, m.row(2));
      cross_in = h.to(run);
    }
    y = attend(b.cross_attn, cross_in, context_emb, false, bi);
    if (trace && i == 0) (*trace)["block0_cross_attn_out"] = y;
    at::Tensor ffn_in;
    std::tie(h, ffn_in) = fused::residual_norm_modulate(h, y, none, none, none, m.row(3), m.row(4), cfg_.eps, run);
    y = b.ffn2(fused::linear_gelu_tanh(b.ffn0, ffn_in));
    if (trace && i == 0) (*trace)["block0_ffn_out"] = y;
    const at::Tensor gate = m.row(5);
    m = block_modulation(i + 1);
    std::tie(h, xin) = fused::residual_norm_modulate(h, y, gate, none, none, m.row(0), m.row(1), cfg_.eps, run);
    if (trace) (*trace)["block" + std::to_string(i) + "_out"] = h;
  }
  at::Tensor out = head_(xin).to(at::kFloat);
  if (trace) (*trace)["head_out"] = out;

  // Unpatchify: value ((pt*ph + ph)*pw + pw)*C + c of a token -> out[c, ...].
  std::vector<at::Tensor> result;
  for (int64_t i = 0; i < B; ++i) {
    const auto [f, hh, ww] = grids[static_cast<size_t>(i)];
    result.push_back(out[i]
                         .slice(0, 0, f * hh * ww)
                         .view({f, hh, ww, pt, ph, pw, cfg_.out_dim})
                         .permute({6, 0, 3, 1, 4, 2, 5})
                         .reshape({cfg_.out_dim, f * pt, hh * ph, ww * pw}));
  }
  return result;
}

}  // namespace kino
