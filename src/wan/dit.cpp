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
// in float64 from the timestep, then float32.
at::Tensor timestep_sinusoid(const std::vector<double>& t, int64_t freq_dim) {
  const int64_t half = freq_dim / 2;
  at::Tensor pos = at::tensor(t, at::kDouble);
  at::Tensor w = at::pow(10000.0, -at::arange(half, at::kDouble).div(half));
  at::Tensor arg = at::outer(pos, w);
  return at::cat({at::cos(arg), at::sin(arg)}, 1).to(at::kFloat);
}

// rope_params: angle[p, k] = p / 10000^(2k / dim) for k < dim / 2, float64.
at::Tensor rope_angles(int64_t max_len, int64_t dim) {
  at::Tensor inv = 1.0 / at::pow(10000.0, at::arange(0, dim, 2, at::kDouble).div(dim));
  return at::outer(at::arange(max_len, at::kDouble), inv);
}

}  // namespace

// A modulation table [1, n, d] plus its time projection emb ([B, n, d], or
// [B, 1, d] broadcast over the n rows), summed once. With a first-frame
// timestep the tokens marked by `first` [B, S, 1] take the rows of emb_first
// instead, and a row read is per token, [B, S, d]: made when read, since the
// six of a block at once would be [B, S, 6, d] (as model.py holds them), 2 GB
// float32 per sample at 1280x704x121 with Wan2.2 TI2V-5B.
struct WanDiT::Modulation {
  Modulation(const at::Tensor& table, const at::Tensor& emb, const at::Tensor& emb_first, const at::Tensor& first)
      : rows(table + emb), first_rows(first.defined() ? table + emb_first : at::Tensor()), first(first) {}
  at::Tensor row(int64_t k) const {
    const at::Tensor r = rows.narrow(1, k, 1);
    return first.defined() ? at::where(first, first_rows.narrow(1, k, 1), r) : r;
  }
  at::Tensor rows, first_rows, first;
};

// The time embedding e [B, d] and its projection e0 [B, 6, d]; with another
// timestep on the first latent frame (Wan2.2: per token), the same for that
// value, and `first` [B, S, 1] marking the tokens of latent frame 0.
struct WanDiT::TimeEmbedding {
  at::Tensor e, e0, e_first, e0_first, first;
};

// What every block of one forward reads.
struct WanDiT::Step {
  int64_t batch;
  at::Tensor context;    // embedded text [B, text_len, d]
  at::Tensor image;      // embedded image tokens [B, n, d] (I2V), or undefined
  at::Tensor rotations;  // rope_table
  at::Tensor self_bias;  // -inf on the padding keys of ragged batches, or undefined
  Trace* trace;
};

template <typename F>
void WanDiT::parameters(F&& f) {
  const int64_t d = cfg_.dim;
  const std::vector<int64_t>& p = cfg_.patch_size;
  auto linear = [&](nn::Linear& l, const std::string& name, int64_t in, int64_t out, bool float32) { f(name, l, in, out, float32); };
  f("patch_embedding.weight", patch_w_, {d, cfg_.in_dim, p[0], p[1], p[2]}, false);
  f("patch_embedding.bias", patch_b_, {d}, false);
  linear(text0_, "text_embedding.0", cfg_.text_dim, d, false);
  linear(text2_, "text_embedding.2", d, d, false);
  linear(time0_, "time_embedding.0", cfg_.freq_dim, d, true);
  linear(time2_, "time_embedding.2", d, d, true);
  linear(time_proj_, "time_projection.1", d, 6 * d, true);
  if (const int64_t c = cfg_.image_dim) {
    f("img_emb.proj.0.weight", img_norm0_w_, {c}, false);
    f("img_emb.proj.0.bias", img_norm0_b_, {c}, false);
    linear(img1_, "img_emb.proj.1", c, c, false);
    linear(img3_, "img_emb.proj.3", c, d, false);
    f("img_emb.proj.4.weight", img_norm4_w_, {d}, false);
    f("img_emb.proj.4.bias", img_norm4_b_, {d}, false);
    if (cfg_.image_pos_tokens) f("img_emb.emb_pos", img_pos_, {1, cfg_.image_pos_tokens, c}, false);
  }
  for (size_t i = 0; i < blocks_.size(); ++i) block_parameters(blocks_[i], "blocks." + std::to_string(i) + ".", f);
  if (const int64_t c = cfg_.vace_in_dim) {
    f("vace_patch_embedding.weight", vace_patch_w_, {d, c, p[0], p[1], p[2]}, false);
    f("vace_patch_embedding.bias", vace_patch_b_, {d}, false);
    for (size_t n = 0; n < vace_blocks_.size(); ++n) {
      VaceBlock& vb = vace_blocks_[n];
      const std::string name = "vace_blocks." + std::to_string(n) + ".";
      block_parameters(vb.block, name, f);
      if (n == 0) linear(vb.before_proj, name + "before_proj", d, d, false);
      linear(vb.after_proj, name + "after_proj", d, d, false);
    }
  }
  f("head.modulation", head_modulation_, {1, 2, d}, true);
  linear(head_, "head.head", d, p[0] * p[1] * p[2] * cfg_.out_dim, false);
}

// One block's tensors under `name` (WanAttentionBlock), in parameters()' terms.
template <typename F>
void WanDiT::block_parameters(Block& b, const std::string& name, F&& f) {
  const int64_t d = cfg_.dim;
  auto linear = [&](nn::Linear& l, const std::string& n, int64_t in, int64_t out, bool float32) { f(n, l, in, out, float32); };
  f(name + "modulation", b.modulation, {1, 6, d}, true);
  for (auto [attn, kind] : {std::pair<Attention*, const char*>{&b.self_attn, "self_attn."}, {&b.cross_attn, "cross_attn."}}) {
    const std::string a = name + kind;
    linear(attn->q, a + "q", d, d, false);
    linear(attn->k, a + "k", d, d, false);
    linear(attn->v, a + "v", d, d, false);
    linear(attn->o, a + "o", d, d, false);
    if (cfg_.qk_norm) {
      f(a + "norm_q.weight", attn->norm_q, {d}, true);
      f(a + "norm_k.weight", attn->norm_k, {d}, true);
    }
    if (cfg_.image_dim && attn == &b.cross_attn) {
      linear(attn->k_img, a + "k_img", d, d, false);
      linear(attn->v_img, a + "v_img", d, d, false);
      if (cfg_.qk_norm) f(a + "norm_k_img.weight", attn->norm_k_img, {d}, true);
    }
  }
  if (cfg_.cross_attn_norm) {
    f(name + "norm3.weight", b.norm3_w, {d}, true);
    f(name + "norm3.bias", b.norm3_b, {d}, true);
  }
  linear(b.ffn0, name + "ffn.0", d, cfg_.ffn_dim, false);
  linear(b.ffn2, name + "ffn.2", cfg_.ffn_dim, d, false);
}

WanDiT::WanDiT(const WanDiTConfig& cfg, Weights& w) : cfg_(cfg) {
  const int64_t d = cfg.dim;
  if (cfg.patch_size.size() != 3) throw Error("patch_size must have 3 entries");
  if (cfg.num_heads < 1 || d % cfg.num_heads != 0) throw Error(concat("dim ", d, " is not a multiple of num_heads ", cfg.num_heads));
  blocks_.resize(static_cast<size_t>(std::max<int64_t>(0, cfg.num_layers)));
  if (cfg.vace_in_dim < 0 || (cfg.vace_in_dim > 0) == cfg.vace_layers.empty())
    throw Error(concat("vace_in_dim ", cfg.vace_in_dim, " and vace_layers (", cfg.vace_layers.size(),
                       " entries) must both be given for a VACE transformer, or neither"));
  for (size_t n = 0; n < cfg.vace_layers.size(); ++n)
    if (cfg.vace_layers[n] < 0 || cfg.vace_layers[n] >= cfg.num_layers || (n && cfg.vace_layers[n] <= cfg.vace_layers[n - 1]))
      throw Error(concat("vace_layers must be increasing block numbers below num_layers ", cfg.num_layers, ", got ",
                         cfg.vace_layers[n], " at entry ", n));
  vace_blocks_.resize(cfg.vace_layers.size());
  parameters(nn::overloaded{
      [&](const std::string& name, at::Tensor& t, const std::vector<int64_t>& shape, bool) { t = w.take(name, shape); },
      [&](const std::string& name, nn::Linear& l, int64_t in, int64_t out, bool) { l = nn::Linear(w, name, in, out); }});

  // 3-axis RoPE table: head_dim split as d - 4*(d/6) (time), 2*(d/6) (rows),
  // 2*(d/6) (columns); one column per complex pair.
  const int64_t hd = d / cfg.num_heads;
  at::Tensor angles = at::cat({rope_angles(1024, hd - 4 * (hd / 6)), rope_angles(1024, 2 * (hd / 6)),
                               rope_angles(1024, 2 * (hd / 6))},
                              1);
  rope_cos_ = at::cos(angles);
  rope_sin_ = at::sin(angles);
}

void WanDiT::to(at::Device device, at::ScalarType dtype) {
  auto options = [&](bool float32) { return at::TensorOptions().device(device).dtype(float32 ? at::kFloat : dtype); };
  parameters(nn::overloaded{
      [&](const std::string&, at::Tensor& t, const std::vector<int64_t>&, bool float32) { t = t.to(options(float32)); },
      [&](const std::string&, nn::Linear& l, int64_t, int64_t, bool float32) { l.to(options(float32)); }});
  rope_cos_ = rope_cos_.to(device);
  rope_sin_ = rope_sin_.to(device);
}

void WanDiT::to(at::Device device) {
  parameters(nn::overloaded{[&](const std::string&, at::Tensor& t, const std::vector<int64_t>&, bool) { t = t.to(device); },
                            [&](const std::string&, nn::Linear& l, int64_t, int64_t, bool) { l.to(at::TensorOptions().device(device)); }});
  rope_cos_ = rope_cos_.to(device);
  rope_sin_ = rope_sin_.to(device);
}

void WanDiT::pin_memory() {
  parameters(nn::overloaded{[](const std::string&, at::Tensor& t, const std::vector<int64_t>&, bool) { t = t.pin_memory(); },
                            [](const std::string&, nn::Linear& l, int64_t, int64_t, bool) { l.pin_memory(); }});
}

void WanDiT::stream_blocks(at::Device device, int ahead) {
  const bool pin = device.is_cuda();
  parameters(nn::overloaded{
      [&](const std::string&, at::Tensor& t, const std::vector<int64_t>&, bool) { t = t.to(device); },
      [&](const std::string& name, nn::Linear& l, int64_t, int64_t, bool) {
        if (name.rfind("blocks.", 0) != 0) l.to(at::TensorOptions().device(device));
        else if (pin) l.pin_memory();
      }});
  rope_cos_ = rope_cos_.to(device);
  rope_sin_ = rope_sin_.to(device);
  const at::TensorOptions on_device = at::TensorOptions().device(device);
  stream_ = std::make_shared<nn::BlockStream<Block>>(device, ahead, [on_device](const Block& host) {
    Block b = host;
    for (nn::Linear* l : b.linears())
      if (l->packed || l->weight.defined()) l->to(on_device, /*non_blocking=*/true);
    return b;
  });
}

int64_t WanDiT::weight_bytes() const {
  int64_t bytes = 0;
  auto dense = [&](const at::Tensor& t) { bytes += t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; };
  // parameters() only reads here.
  const_cast<WanDiT*>(this)->parameters(nn::overloaded{
      [&](const std::string&, at::Tensor& t, const std::vector<int64_t>&, bool) { dense(t); },
      [&](const std::string&, nn::Linear& l, int64_t, int64_t, bool) {
        if (l.packed) bytes += l.packed->stored_bytes();
        dense(l.weight);
        dense(l.bias);
        for (const LowRankDelta& d : l.deltas) {
          dense(d.down);
          dense(d.up);
        }
      }});
  return bytes;
}

// rope_apply's rotations for a batch: per token, the unit complex numbers of
// the angles of its (frame, row, column), [B or 1, seq_len, 1, head_dim / 2];
// 1 for padding tokens, which stay untouched. complex128 (the official float64
// rotation) when the transformer runs in float32; complex64 for bf16/fp16
// runs, whose rotated q and k are rounded to 8-11 bits right after (float32
// angles are exact to 2^-24 relative). Built once per forward, shared by all
// blocks. One batch row when every sample has the same grid.
at::Tensor WanDiT::rope_table(const std::vector<Grid>& grids, int64_t seq_len) const {
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

// The Conv3d with kernel = stride = patch (`weight`, `bias`: the patch
// embedding's, or VACE's) as one matmul over tokens in (f, h, w) row-major
// order, zero-padded to seq_len: [B, S, d] float32.
at::Tensor WanDiT::patchify(const std::vector<at::Tensor>& x, const at::Tensor& weight, const at::Tensor& bias, int64_t seq_len,
                            std::vector<Grid>& grids) const {
  const int64_t d = cfg_.dim, C = weight.size(1);
  const int64_t pt = cfg_.patch_size[0], ph = cfg_.patch_size[1], pw = cfg_.patch_size[2];
  std::vector<at::Tensor> tokens;
  for (const auto& u : x) {
    if (u.dim() != 4 || u.size(0) != C || u.size(1) % pt || u.size(2) % ph || u.size(3) % pw)
      throw Error(concat("WanDiT: input shape ", u.sizes(), " does not fit ", C, " channels and the patch size"));
    const int64_t f = u.size(1) / pt, h = u.size(2) / ph, w = u.size(3) / pw;
    grids.push_back({f, h, w});
    at::Tensor p = u.to(weight.device()).view({C, f, pt, h, ph, w, pw}).permute({1, 3, 5, 0, 2, 4, 6}).reshape({f * h * w, -1});
    at::Tensor emb = at::linear(p.to(weight.scalar_type()), weight.reshape({d, -1}), bias);
    if (emb.size(0) > seq_len) throw Error(concat("WanDiT: ", emb.size(0), " tokens exceed seq_len ", seq_len));
    tokens.push_back(at::cat({emb, emb.new_zeros({seq_len - emb.size(0), d})}));
  }
  return at::stack(tokens).to(at::kFloat);
}

// The MLPs run once per distinct timestep: for `t`, and for the first
// frame's when it differs.
WanDiT::TimeEmbedding WanDiT::embed_time(const std::vector<double>& t, const std::vector<double>& first_frame_t,
                                         const std::vector<Grid>& grids, int64_t seq_len) const {
  const at::Device device = patch_w_.device();
  auto embed = [&](const std::vector<double>& ts) {
    at::Tensor emb = time2_(at::silu(time0_(timestep_sinusoid(ts, cfg_.freq_dim).to(device))));
    return std::make_pair(emb, time_proj_(at::silu(emb)).unflatten(1, {6, cfg_.dim}));
  };
  TimeEmbedding te;
  std::tie(te.e, te.e0) = embed(t);
  if (!first_frame_t.empty() && first_frame_t != t) {
    std::tie(te.e_first, te.e0_first) = embed(first_frame_t);
    std::vector<at::Tensor> rows;
    for (const Grid& g : grids) rows.push_back(at::arange(seq_len, at::kLong).lt(g[1] * g[2] * cfg_.patch_size[0]));
    te.first = at::stack(rows).to(device).unsqueeze(-1);
  }
  return te;
}

std::pair<at::Tensor, at::Tensor> WanDiT::time_embedding(double t) const {
  const TimeEmbedding te = embed_time({t}, {}, {}, 0);
  return {te.e, te.e0};
}

// The context padded to text_len and embedded. The padded rows embed to a
// constant vector and are attended to: no mask.
at::Tensor WanDiT::embed_text(const std::vector<at::Tensor>& context) const {
  std::vector<at::Tensor> ctx;
  for (const auto& c : context) {
    if (c.dim() != 2 || c.size(1) != cfg_.text_dim || c.size(0) > cfg_.text_len)
      throw Error(concat("WanDiT: context shape ", c.sizes(), " must be [<= ", cfg_.text_len, ", ", cfg_.text_dim, "]"));
    at::Tensor cd = c.to(patch_w_.device(), at::kFloat);
    ctx.push_back(at::cat({cd, cd.new_zeros({cfg_.text_len - c.size(0), cfg_.text_dim})}));
  }
  return text2_(nn::gelu_tanh(text0_(at::stack(ctx)))).to(at::kFloat);
}

// img_emb (model.py MLPProj) of each sample's CLIP features; FLF2V adds
// the positions of its two images' tokens first.
at::Tensor WanDiT::embed_image(const std::vector<at::Tensor>& image) const {
  std::vector<at::Tensor> rows;
  for (const auto& f : image) {
    const int64_t n = cfg_.image_pos_tokens;
    if (f.dim() != 2 || f.size(1) != cfg_.image_dim || (n && f.size(0) != n))
      throw Error(concat("WanDiT: image features ", f.sizes(), " must be [", n ? concat(n) : std::string("tokens"), ", ",
                         cfg_.image_dim, "]"));
    rows.push_back(f.to(patch_w_.device(), at::kFloat));
  }
  at::Tensor x = at::stack(rows);
  if (img_pos_.defined()) x = x + img_pos_.to(at::kFloat);
  x = nn::layer_norm(x, img_norm0_w_, img_norm0_b_, 1e-5);
  x = img3_(at::gelu(img1_(x)));  // exact (erf) GELU
  return nn::layer_norm(x, img_norm4_w_, img_norm4_b_, 1e-5).to(at::kFloat);
}

// Keys past a sample's token count are masked out of self-attention
// (undefined when every sample fills seq_len).
at::Tensor WanDiT::self_attention_bias(const std::vector<Grid>& grids, int64_t seq_len) const {
  const bool ragged = std::any_of(grids.begin(), grids.end(), [&](const Grid& g) { return g[0] * g[1] * g[2] != seq_len; });
  if (!ragged) return {};
  at::Tensor bias = at::zeros({static_cast<int64_t>(grids.size()), 1, 1, seq_len}, at::TensorOptions().device(patch_w_.device()));
  for (size_t i = 0; i < grids.size(); ++i) {
    const Grid& g = grids[i];
    bias[static_cast<int64_t>(i)].slice(-1, g[0] * g[1] * g[2]).fill_(-std::numeric_limits<float>::infinity());
  }
  return bias;
}

// WanSelfAttention / WanCrossAttention: qk RMS-norm, RoPE on self-attention
// only; the output projection in the run dtype (the residual updates
// compute in float32).
at::Tensor WanDiT::attend(const Attention& a, const at::Tensor& q_in, const at::Tensor& kv_in, bool self, const Step& step,
                          bool traced) const {
  const int64_t B = step.batch, d = cfg_.dim, H = cfg_.num_heads, hd = d / H;
  const int64_t Lq = q_in.size(1), Lk = kv_in.size(1);
  const at::ScalarType run = a.q.dtype();
  const at::Tensor rot = self ? step.rotations : at::Tensor();
  const at::Tensor q = fused::qk_norm_rope(a.q(q_in), cfg_.qk_norm ? a.norm_q : at::Tensor(), rot, H, cfg_.eps, run);
  const at::Tensor k = fused::qk_norm_rope(a.k(kv_in), cfg_.qk_norm ? a.norm_k : at::Tensor(), rot, H, cfg_.eps, run);
  const at::Tensor v = a.v(kv_in).view({B, Lk, H, hd});
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor core = nn::attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), self ? step.self_bias : at::Tensor(), scale)
                        .transpose(1, 2);
  if (traced) {
    const std::string p = self ? "block0_self_" : "block0_cross_";
    (*step.trace)[p + (self ? "q_roped" : "q")] = q;
    (*step.trace)[p + (self ? "k_roped" : "k")] = k;
    (*step.trace)[p + "v"] = v;
    (*step.trace)[p + "attn_core"] = core;
  }
  if (!self && step.image.defined()) {
    // WanI2VCrossAttention: the same queries attend to the image tokens
    // with their own keys and values; the two results are added before o.
    const int64_t Li = step.image.size(1);
    const at::Tensor ki = fused::qk_norm_rope(a.k_img(step.image), cfg_.qk_norm ? a.norm_k_img : at::Tensor(), at::Tensor(), H,
                                              cfg_.eps, run);
    const at::Tensor vi = a.v_img(step.image).view({B, Li, H, hd});
    const at::Tensor image_core =
        nn::attention(q.transpose(1, 2), ki.transpose(1, 2), vi.transpose(1, 2), at::Tensor(), scale).transpose(1, 2);
    if (traced) {
      (*step.trace)["block0_cross_k_text"] = k;
      (*step.trace)["block0_cross_v_text"] = v;
      (*step.trace)["block0_cross_text_core"] = core;
      (*step.trace)["block0_cross_k_img"] = ki;
      (*step.trace)["block0_cross_v_img"] = vi;
      (*step.trace)["block0_cross_img_core"] = image_core;
    }
    core = core + image_core;
  }
  return a.o(core.reshape({B, Lq, d}));
}

// WanAttentionBlock i on the residual stream h [B, S, d] float32 and its
// modulated norm1 xin. Each residual update is fused with the LayerNorm (and
// modulation) that reads its result: the FFN's with the next block's norm1
// (modulation `next`; the head's after the last block). Returns h and the
// next block's xin.
std::pair<at::Tensor, at::Tensor> WanDiT::block(const Block& b, bool traced, at::Tensor h, const at::Tensor& xin,
                                                const Modulation& m, const Modulation& next, const Step& step,
                                                const at::Tensor& hint) const {
  const at::Tensor none;
  const at::ScalarType run = patch_w_.scalar_type();
  auto record = [&](const char* name, const at::Tensor& t) {
    if (traced) (*step.trace)[name] = t;
  };
  at::Tensor y = attend(b.self_attn, xin, xin, true, step, traced);
  record("block0_self_attn_out", y);
  at::Tensor cross_in;
  if (cfg_.cross_attn_norm) {
    std::tie(h, cross_in) = fused::residual_norm_modulate(h, y, m.row(2), b.norm3_w, b.norm3_b, none, none, cfg_.eps, run);
  } else {
    h = at::addcmul(h, y, m.row(2));
    cross_in = h.to(run);
  }
  y = attend(b.cross_attn, cross_in, step.context, false, step, traced);
  record("block0_cross_attn_out", y);
  at::Tensor ffn_in;
  std::tie(h, ffn_in) = fused::residual_norm_modulate(h, y, none, none, none, m.row(3), m.row(4), cfg_.eps, run);
  y = b.ffn2(fused::linear_gelu_tanh(b.ffn0, ffn_in));
  record("block0_ffn_out", y);
  // VACE: the block's hint joins the stream with its FFN update.
  if (hint.defined()) h = h + hint;
  at::Tensor next_in;
  std::tie(h, next_in) = fused::residual_norm_modulate(h, y, m.row(5), none, none, next.row(0), next.row(1), cfg_.eps, run);
  return {h, next_in};
}

// VaceWanModel.forward_vace: the VACE tokens (before_proj of their patch
// embedding plus the embedded latent `x_tokens`) through the VACE blocks,
// with the main blocks' timestep modulation, text, RoPE and masks; hint n
// is after_proj of block n's output times the scale, [B, S, d].
std::vector<at::Tensor> WanDiT::vace_hints(const VaceInput& vace, const at::Tensor& x_tokens, const std::vector<Grid>& grids,
                                           int64_t seq_len, const TimeEmbedding& te, const Modulation& head,
                                           const Step& step) const {
  if (static_cast<int64_t>(vace.context.size()) != step.batch) throw Error("WanDiT: the VACE context needs one entry per sample");
  std::vector<Grid> vace_grids;
  const at::Tensor tokens = patchify(vace.context, vace_patch_w_, vace_patch_b_, seq_len, vace_grids);
  if (vace_grids != grids) throw Error("WanDiT: the VACE context's frames, height and width differ from the latent's");
  const at::Tensor projected = vace_blocks_[0].before_proj(tokens).to(at::kFloat);
  at::Tensor c = projected + x_tokens;
  if (step.trace) {
    (*step.trace)["x_tokens"] = x_tokens;
    (*step.trace)["vace_tokens"] = tokens;
    (*step.trace)["vace_before_proj"] = projected;
  }
  auto modulation = [&](size_t n) {
    return n < vace_blocks_.size() ? Modulation{vace_blocks_[n].block.modulation, te.e0, te.e0_first, te.first} : head;
  };
  Modulation m = modulation(0);
  at::Tensor xin = fused::norm_modulate(c, {}, {}, m.row(0), m.row(1), cfg_.eps, patch_w_.scalar_type());
  std::vector<at::Tensor> hints;
  for (size_t n = 0; n < vace_blocks_.size(); ++n) {
    const Modulation next = modulation(n + 1);
    std::tie(c, xin) = block(vace_blocks_[n].block, false, c, xin, m, next, step);
    m = next;
    // Held in the run dtype until its block (bf16: half the memory; the
    // official autocast keeps them so too).
    hints.push_back(vace_blocks_[n].after_proj(c));
    if (step.trace) {
      (*step.trace)["vace_block" + std::to_string(n) + ".c"] = c;
      (*step.trace)["hint" + std::to_string(n)] = hints.back();
    }
    hints.back() = hints.back() * vace.scale;
  }
  return hints;
}

// The head's tokens back to latents: value ((pt*ph + ph)*pw + pw)*C + c of a
// token -> out[c, ...], per sample [out_dim, F, H, W].
std::vector<at::Tensor> WanDiT::unpatchify(const at::Tensor& out, const std::vector<Grid>& grids) const {
  const int64_t pt = cfg_.patch_size[0], ph = cfg_.patch_size[1], pw = cfg_.patch_size[2];
  std::vector<at::Tensor> result;
  for (size_t i = 0; i < grids.size(); ++i) {
    const auto [f, hh, ww] = grids[i];
    result.push_back(out[static_cast<int64_t>(i)]
                         .slice(0, 0, f * hh * ww)
                         .view({f, hh, ww, pt, ph, pw, cfg_.out_dim})
                         .permute({6, 0, 3, 1, 4, 2, 5})
                         .reshape({cfg_.out_dim, f * pt, hh * ph, ww * pw}));
  }
  return result;
}

std::vector<at::Tensor> WanDiT::forward(const std::vector<at::Tensor>& x, const std::vector<double>& t,
                                        const std::vector<at::Tensor>& context, int64_t seq_len, Trace* trace,
                                        const std::vector<double>& first_frame_t, const std::vector<at::Tensor>& image,
                                        BlockResidual* cache, const VaceInput* vace) const {
  const int64_t B = static_cast<int64_t>(x.size());
  if (B == 0 || static_cast<int64_t>(t.size()) != B || static_cast<int64_t>(context.size()) != B ||
      (!first_frame_t.empty() && static_cast<int64_t>(first_frame_t.size()) != B))
    throw Error("WanDiT: x, t, first_frame_t and context need one entry per sample");
  if ((cfg_.image_dim > 0) != !image.empty() || (!image.empty() && static_cast<int64_t>(image.size()) != B))
    throw Error(cfg_.image_dim ? "WanDiT: this image-to-video transformer needs image features for every sample"
                               : "WanDiT: this transformer takes no image features");
  if ((cfg_.vace_in_dim > 0) != (vace != nullptr))
    throw Error(cfg_.vace_in_dim ? "WanDiT: this VACE transformer needs a VACE context" : "WanDiT: this transformer takes no VACE context");
  const int64_t d = cfg_.dim;

  std::vector<Grid> grids;
  at::Tensor h = patchify(x, patch_w_, patch_b_, seq_len, grids);  // [B, S, d]
  if (trace && B == 1) {
    const auto [f, hh, ww] = grids[0];
    (*trace)["patch_embedding_out"] = h.slice(1, 0, f * hh * ww).transpose(1, 2).reshape({1, d, f, hh, ww});
  }
  const TimeEmbedding te = embed_time(t, first_frame_t, grids, seq_len);
  if (trace) {  // per token, as model.py has them: [B, S, d] and [B, S, 6, d]
    (*trace)["e"] = te.first.defined() ? at::where(te.first, te.e_first.unsqueeze(1), te.e.unsqueeze(1)) : te.e;
    (*trace)["e0"] = te.first.defined() ? at::where(te.first.unsqueeze(-1), te.e0_first.unsqueeze(1), te.e0.unsqueeze(1)) : te.e0;
  }
  const Step step{B, embed_text(context), image.empty() ? at::Tensor() : embed_image(image), rope_table(grids, seq_len),
                  self_attention_bias(grids, seq_len), trace};
  if (trace) {
    (*trace)["context_embedded"] = (*trace)["text_embedded"] = step.context;
    if (step.image.defined()) {
      (*trace)["img_emb_out"] = step.image;
      (*trace)["context_all"] = at::cat({step.image, step.context}, 1);
    }
  }

  // Residuals and modulation in float32 (model.py); the head is modulated by
  // the time embedding e (not e0).
  const at::Tensor none;
  const Modulation head{head_modulation_, te.e.unsqueeze(1), te.first.defined() ? te.e_first.unsqueeze(1) : none, te.first};
  auto modulation = [&](size_t i) { return i < blocks_.size() ? Modulation{blocks_[i].modulation, te.e0, te.e0_first, te.first} : head; };
  Modulation m = modulation(0);
  at::Tensor xin;
  if (cache && cache->add.defined()) {
    h = h + cache->add.to(h.device());
    xin = fused::norm_modulate(h, none, none, head.row(0), head.row(1), cfg_.eps, patch_w_.scalar_type());
  } else {
    const at::Tensor embedded = h;
    // VACE's hints come first, from the embedded tokens; hint n joins main
    // block vace_layers[n].
    const std::vector<at::Tensor> hints = vace ? vace_hints(*vace, h, grids, seq_len, te, head, step) : std::vector<at::Tensor>{};
    size_t next_hint = 0;
    xin = fused::norm_modulate(h, none, none, m.row(0), m.row(1), cfg_.eps, patch_w_.scalar_type());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const Modulation next = modulation(i + 1);
      const bool hinted = next_hint < hints.size() && cfg_.vace_layers[next_hint] == static_cast<int64_t>(i);
      std::tie(h, xin) = block(stream_ ? stream_->get(blocks_, i) : blocks_[i], trace && i == 0, h, xin, m, next, step,
                               hinted ? hints[next_hint++] : at::Tensor());
      if (trace) (*trace)["block" + std::to_string(i) + "_out"] = h;
      m = next;
    }
    if (cache && cache->residual) *cache->residual = h - embedded;
  }
  at::Tensor out = head_(xin).to(at::kFloat);
  if (trace) (*trace)["head_out"] = out;
  return unpatchify(out, grids);
}

}  // namespace kino
