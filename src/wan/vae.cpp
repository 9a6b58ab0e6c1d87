#include "wan/vae.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <torch/version.h>

#include "kino/error.h"

namespace kino {

namespace {

// conv3d without padding. libtorch 1.x sends small float32 CPU convolutions
// down a slow vol2col path; oneDNN does the same sum ~30x faster.
at::Tensor conv3d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::IntArrayRef stride) {
#if TORCH_VERSION_MAJOR < 2
  if (x.device().is_cpu() && x.scalar_type() == at::kFloat)
    return at::mkldnn_convolution(x.contiguous(), w.contiguous(), b, {0, 0, 0}, stride, {1, 1, 1}, 1);
#endif
  return at::conv3d(x, w, b, stride);
}

// Per-frame 2D op on [B, C, T, H, W].
template <typename F>
at::Tensor per_frame(const at::Tensor& x, F&& op) {
  const int64_t B = x.size(0), T = x.size(2);
  at::Tensor y = op(x.transpose(1, 2).reshape({B * T, x.size(1), x.size(3), x.size(4)}));
  return y.view({B, T, y.size(1), y.size(2), y.size(3)}).transpose(1, 2);
}

// RMS_norm: F.normalize over channels (x / max(||x||, 1e-12)) * sqrt(C) * gamma.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& gamma) {
  const double scale = std::sqrt(static_cast<double>(x.size(1)));
  // (x * x).sum().sqrt() rather than x.norm(): the same value, and ~50x
  // faster in libtorch 1.13 for a reduction over the channel axis.
  return x / at::clamp_min((x * x).sum(1, true).sqrt(), 1e-12) * (gamma * scale);
}

}  // namespace

at::Tensor vae_patchify(const at::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  return x.reshape({B, C, T, H / 2, 2, W / 2, 2}).permute({0, 1, 6, 4, 2, 3, 5}).reshape({B, 4 * C, T, H / 2, W / 2});
}

at::Tensor vae_unpatchify(const at::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1) / 4, T = x.size(2), h = x.size(3), w = x.size(4);
  return x.reshape({B, C, 2, 2, T, h, w}).permute({0, 1, 4, 5, 3, 6, 2}).reshape({B, C, T, 2 * h, 2 * w});
}

// AvgDown3D: front-pad time with zero frames to a multiple of ft, fold each
// ft x fs x fs block into channels (c, a, b, d), then average groups of
// C*ft*fs*fs/out consecutive channels.
at::Tensor vae_avg_down(const at::Tensor& x, int64_t out, int64_t ft, int64_t fs) {
  const int64_t pad = (ft - x.size(2) % ft) % ft;
  const at::Tensor xp = pad ? at::constant_pad_nd(x, {0, 0, 0, 0, pad, 0}) : x;
  const int64_t B = xp.size(0), C = xp.size(1), T = xp.size(2) / ft, H = xp.size(3) / fs, W = xp.size(4) / fs;
  const int64_t group = C * ft * fs * fs / out;
  return xp.reshape({B, C, T, ft, H, fs, W, fs})
      .permute({0, 1, 3, 5, 7, 2, 4, 6})
      .reshape({B, out, group, T, H, W})
      .mean(2);
}

// DupUp3D: each input channel repeated out*ft*fs*fs/C times, unfolded into
// ft x fs x fs blocks; the first chunk of a stream drops its first ft - 1
// frames.
at::Tensor vae_dup_up(const at::Tensor& x, int64_t out, int64_t ft, int64_t fs, bool first_chunk) {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const at::Tensor y = x.repeat_interleave(out * ft * fs * fs / C, 1)
                           .reshape({B, out, ft, fs, fs, T, H, W})
                           .permute({0, 1, 5, 2, 6, 3, 7, 4})
                           .reshape({B, out, T * ft, H * fs, W * fs});
  return first_chunk ? y.slice(2, ft - 1) : y;
}

// Streaming state of a chunked pass: the last two input frames of every
// causal conv, whether each temporal upsampler has seen frame 0, and whether
// this is the stream's first chunk.
struct StreamState {
  std::vector<at::Tensor> frames;
  std::vector<char> started;
  bool first_chunk = true;
};

struct CausalConv3d {
  at::Tensor w, b;
  int64_t pad_t = 0, pad_hw = 0;  // CausalConv3d padding (time, space)
  int slot = -1;                  // cache slot for streaming

  // Zero-pads 2*pad_t frames in front (fewer when cached frames stand in)
  // and pad_hw pixels on each side, then a plain convolution.
  at::Tensor operator()(const at::Tensor& x, StreamState* state, at::IntArrayRef stride = {1, 1, 1}) const {
    at::Tensor in = x;
    int64_t front = 2 * pad_t;
    if (state && pad_t > 0) {
      at::Tensor& cached = state->frames[static_cast<size_t>(slot)];
      if (cached.defined()) {
        in = at::cat({cached, x}, 2);
        front = std::max<int64_t>(0, front - cached.size(2));
      }
      cached = in.slice(2, std::max<int64_t>(0, in.size(2) - 2)).clone();
    }
    if (front || pad_hw) in = at::constant_pad_nd(in, {pad_hw, pad_hw, pad_hw, pad_hw, front, 0});
    return conv3d(in, w, b, stride);
  }
};

struct WanVAE::Impl {
  enum class Kind { Residual, Attention, Down2d, Down3d, Up2d, Up3d };
  struct Layer {
    Kind kind = Kind::Residual;
    // Residual
    at::Tensor gamma0, gamma3;
    CausalConv3d conv_a, conv_b, shortcut;
    bool has_shortcut = false;
    // Attention
    at::Tensor norm_gamma, qkv_w, qkv_b, proj_w, proj_b;
    // Resample
    at::Tensor resample_w, resample_b;
    CausalConv3d time_conv;
    int up_slot = -1;
  };
  // One resolution level: residual blocks, then (except the last) a
  // resampler; Wan2.2 adds a parameter-free shortcut from the level's input
  // (AvgDown3D in the encoder, DupUp3D in the decoder) to its output.
  struct Level {
    std::vector<Layer> layers;
    bool shortcut = false;
    int64_t out = 0, ft = 1, fs = 1;  // shortcut channels and factors
    void set_shortcut(int64_t channels, int64_t time, int64_t space) {
      shortcut = true;
      out = channels;
      ft = time;
      fs = space;
    }
  };
  struct Stack {
    CausalConv3d conv_in;
    std::vector<Level> levels;
    std::vector<Layer> middle;
    at::Tensor head_gamma;
    CausalConv3d head_conv;
  };

  Stack encoder, decoder;
  CausalConv3d conv1, conv2;  // 1x1x1 before/after the latent
  at::Tensor mean, inv_std;   // [z, 1, 1, 1]
  int num_slots = 0, num_up = 0;

  CausalConv3d make_conv(Weights& w, const std::string& name, int64_t in, int64_t out, int64_t kt, int64_t khw,
                         int64_t pad_t, int64_t pad_hw) {
    CausalConv3d c;
    c.w = w.take(name + ".weight", {out, in, kt, khw, khw});
    c.b = w.take(name + ".bias", {out});
    c.pad_t = pad_t;
    c.pad_hw = pad_hw;
    c.slot = pad_t > 0 ? num_slots++ : -1;
    return c;
  }

  Layer make_residual(Weights& w, const std::string& p, int64_t in, int64_t out) {
    Layer l;
    l.kind = Kind::Residual;
    l.gamma0 = w.take(p + "residual.0.gamma", {in, 1, 1, 1});
    l.conv_a = make_conv(w, p + "residual.2", in, out, 3, 3, 1, 1);
    l.gamma3 = w.take(p + "residual.3.gamma", {out, 1, 1, 1});
    l.conv_b = make_conv(w, p + "residual.6", out, out, 3, 3, 1, 1);
    l.has_shortcut = in != out;
    if (l.has_shortcut) l.shortcut = make_conv(w, p + "shortcut", in, out, 1, 1, 0, 0);
    return l;
  }

  Layer make_attention(Weights& w, const std::string& p, int64_t c) {
    Layer l;
    l.kind = Kind::Attention;
    l.norm_gamma = w.take(p + "norm.gamma", {c, 1, 1});
    l.qkv_w = w.take(p + "to_qkv.weight", {3 * c, c, 1, 1});
    l.qkv_b = w.take(p + "to_qkv.bias", {3 * c});
    l.proj_w = w.take(p + "proj.weight", {c, c, 1, 1});
    l.proj_b = w.take(p + "proj.bias", {c});
    return l;
  }

  // Wan2.1's upsamplers halve the channels, Wan2.2's keep them.
  Layer make_resample(Weights& w, const std::string& p, int64_t c, Kind kind, bool halve_up) {
    Layer l;
    l.kind = kind;
    const bool up = kind == Kind::Up2d || kind == Kind::Up3d;
    const int64_t out = up && halve_up ? c / 2 : c;
    l.resample_w = w.take(p + "resample.1.weight", {out, c, 3, 3});
    l.resample_b = w.take(p + "resample.1.bias", {out});
    if (kind == Kind::Down3d) l.time_conv = make_conv(w, p + "time_conv", c, c, 3, 1, 0, 0);
    if (kind == Kind::Up3d) {
      l.time_conv = make_conv(w, p + "time_conv", c, 2 * c, 3, 1, 1, 0);
      l.up_slot = num_up++;
    }
    return l;
  }

  void make_middle(Weights& w, const std::string& p, int64_t c, std::vector<Layer>& out) {
    out.push_back(make_residual(w, p + "0.", c, c));
    out.push_back(make_attention(w, p + "1.", c));
    out.push_back(make_residual(w, p + "2.", c, c));
  }

  at::Tensor run(const Layer& l, const at::Tensor& x, StreamState* s) const {
    switch (l.kind) {
      case Kind::Residual: {
        at::Tensor h = l.has_shortcut ? l.shortcut(x, s) : x;
        at::Tensor r = l.conv_a(at::silu(rms_norm(x, l.gamma0)), s);
        return l.conv_b(at::silu(rms_norm(r, l.gamma3)), s) + h;
      }
      case Kind::Attention:
        return per_frame(x, [&](const at::Tensor& f) {
                 const int64_t n = f.size(0), c = f.size(1), hw = f.size(2) * f.size(3);
                 at::Tensor qkv = at::conv2d(rms_norm(f, l.norm_gamma), l.qkv_w, l.qkv_b);
                 std::vector<at::Tensor> parts = qkv.view({n, 3 * c, hw}).transpose(1, 2).chunk(3, -1);
                 at::Tensor logits = at::matmul(parts[0], parts[1].transpose(1, 2)) / std::sqrt(static_cast<double>(c));
                 at::Tensor a = at::matmul(at::softmax(logits, -1), parts[2]);  // [n, hw, c]
                 return at::conv2d(a.transpose(1, 2).reshape({n, c, f.size(2), f.size(3)}), l.proj_w, l.proj_b);
               }) +
               x;
      case Kind::Down2d:
      case Kind::Down3d: {
        // Zero-pad right and bottom by one pixel, 3x3 conv with stride 2.
        at::Tensor y = per_frame(x, [&](const at::Tensor& f) {
          return at::conv2d(at::constant_pad_nd(f, {0, 1, 0, 1}), l.resample_w, l.resample_b, {2, 2});
        });
        if (l.kind == Kind::Down2d || y.size(2) < 3) return y;
        // Frame 0 passes through; a stride-2 conv over all frames follows
        // (windows (0,1,2), (2,3,4), ...): the official chunked encode.
        return at::cat({y.slice(2, 0, 1), l.time_conv(y, nullptr, {2, 1, 1})}, 2);
      }
      case Kind::Up2d:
      case Kind::Up3d: {
        at::Tensor y = x;
        if (l.kind == Kind::Up3d) {
          // The first frame of the stream passes through; every later frame
          // becomes two (channels [0, C) then [C, 2C) of the causal conv).
          char& started = s->started[static_cast<size_t>(l.up_slot)];
          at::Tensor head = started ? x.slice(2, 0, 0) : x.slice(2, 0, 1);
          at::Tensor rest = started ? x : x.slice(2, 1);
          started = 1;
          if (rest.size(2) > 0) {
            at::Tensor t = l.time_conv(rest, s);
            const int64_t B = t.size(0), C = x.size(1), T = t.size(2);
            t = t.view({B, 2, C, T, t.size(3), t.size(4)}).permute({0, 2, 3, 1, 4, 5}).reshape({B, C, 2 * T, t.size(3), t.size(4)});
            y = at::cat({head, t}, 2);
          }
        }
        return per_frame(y, [&](const at::Tensor& f) {
          at::Tensor up = at::upsample_nearest2d(f, {2 * f.size(2), 2 * f.size(3)});
          return at::conv2d(up, l.resample_w, l.resample_b, {1, 1}, {1, 1});
        });
      }
    }
    return x;
  }

  // A level's layers plus its shortcut; `shortcut_out` (when tracing) gets
  // the shortcut's output alone.
  at::Tensor run_level(const Level& lv, const at::Tensor& x, StreamState* s, bool decoder, at::Tensor* shortcut_out) const {
    at::Tensor y = x;
    for (const auto& l : lv.layers) y = run(l, y, s);
    if (!lv.shortcut) return y;
    const at::Tensor sc = decoder ? vae_dup_up(x, lv.out, lv.ft, lv.fs, s && s->first_chunk) : vae_avg_down(x, lv.out, lv.ft, lv.fs);
    if (shortcut_out) *shortcut_out = sc;
    return y + sc;
  }

  at::Tensor head(const Stack& st, const at::Tensor& x, StreamState* s) const {
    return st.head_conv(at::silu(rms_norm(x, st.head_gamma)), s);
  }
};


WanVAE::WanVAE(WanVAE&&) noexcept = default;
WanVAE::~WanVAE() = default;

WanVAE::WanVAE(const WanVAEConfig& cfg, Weights& w) : cfg_(cfg), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const int64_t levels = static_cast<int64_t>(cfg.dim_mult.size());
  if (levels < 2 || static_cast<int64_t>(cfg.temporal_downsample.size()) != levels - 1)
    throw Error("VAE config: temporal_downsample needs one entry per level transition");
  if (cfg.latents_mean.size() != static_cast<size_t>(cfg.z_dim) || cfg.latents_std.size() != static_cast<size_t>(cfg.z_dim))
    throw Error(concat("VAE config: latents_mean/latents_std need z_dim = ", cfg.z_dim, " entries"));

  // Wan2.1 names the blocks of all levels in one run (downsamples.N);
  // Wan2.2 nests them per level (downsamples.i.downsamples.j).
  auto block_name = [&](const char* stack, const char* list, int64_t level, int64_t j, int flat) {
    return cfg.wan22 ? concat(stack, ".", list, ".", level, ".", list, ".", j, ".") : concat(stack, ".", list, ".", flat, ".");
  };
  const int64_t pixels = 3 * cfg.patch() * cfg.patch();  // channels after the pixel patchify

  // Encoder: widths dim * [1, mult...].
  std::vector<int64_t> enc{cfg.dim};
  for (int64_t u : cfg.dim_mult) enc.push_back(cfg.dim * u);
  m.encoder.conv_in = m.make_conv(w, "encoder.conv1", pixels, enc[0], 3, 3, 1, 1);
  int idx = 0;
  for (int64_t i = 0; i < levels; ++i) {
    Impl::Level lv;
    int64_t in = enc[i], j = 0;
    for (; j < cfg.num_res_blocks; ++j, in = enc[i + 1])
      lv.layers.push_back(m.make_residual(w, block_name("encoder", "downsamples", i, j, idx++), in, enc[i + 1]));
    const bool last = i == levels - 1, temporal = !last && cfg.temporal_downsample[static_cast<size_t>(i)];
    if (!last)
      lv.layers.push_back(m.make_resample(w, block_name("encoder", "downsamples", i, j, idx++), enc[i + 1],
                                          temporal ? Impl::Kind::Down3d : Impl::Kind::Down2d, true));
    // The last level's shortcut has factors 1: the identity.
    if (cfg.wan22) lv.set_shortcut(enc[i + 1], temporal ? 2 : 1, last ? 1 : 2);
    m.encoder.levels.push_back(std::move(lv));
  }
  const int64_t top = enc.back();
  m.make_middle(w, "encoder.middle.", top, m.encoder.middle);
  m.encoder.head_gamma = w.take("encoder.head.0.gamma", {top, 1, 1, 1});
  m.encoder.head_conv = m.make_conv(w, "encoder.head.2", top, 2 * cfg.z_dim, 3, 3, 1, 1);
  m.conv1 = m.make_conv(w, "conv1", 2 * cfg.z_dim, 2 * cfg.z_dim, 1, 1, 0, 0);
  m.conv2 = m.make_conv(w, "conv2", cfg.z_dim, cfg.z_dim, 1, 1, 0, 0);

  // Decoder: widths dec_dim * [mult[-1], reversed mult...]. Wan2.1's
  // upsamplers halve the channels, so its next level starts from half.
  const int64_t dd = cfg.decoder_dim();
  std::vector<int64_t> dec{dd * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dec.push_back(dd * *it);
  m.decoder.conv_in = m.make_conv(w, "decoder.conv1", cfg.z_dim, dec[0], 3, 3, 1, 1);
  m.make_middle(w, "decoder.middle.", dec[0], m.decoder.middle);
  idx = 0;
  for (int64_t i = 0; i < levels; ++i) {
    Impl::Level lv;
    int64_t in = i == 0 || cfg.wan22 ? dec[i] : dec[i] / 2, j = 0;
    for (; j <= cfg.num_res_blocks; ++j, in = dec[i + 1])
      lv.layers.push_back(m.make_residual(w, block_name("decoder", "upsamples", i, j, idx++), in, dec[i + 1]));
    if (i != levels - 1) {
      const bool temporal = cfg.temporal_downsample[static_cast<size_t>(levels - 2 - i)];
      lv.layers.push_back(m.make_resample(w, block_name("decoder", "upsamples", i, j, idx++), dec[i + 1],
                                          temporal ? Impl::Kind::Up3d : Impl::Kind::Up2d, !cfg.wan22));
      if (cfg.wan22) lv.set_shortcut(dec[i + 1], temporal ? 2 : 1, 2);
    }
    m.decoder.levels.push_back(std::move(lv));
  }
  m.decoder.head_gamma = w.take("decoder.head.0.gamma", {dec.back(), 1, 1, 1});
  m.decoder.head_conv = m.make_conv(w, "decoder.head.2", dec.back(), pixels, 3, 3, 1, 1);

  // scale = [mean, 1 / std] in float32 (WanVAE wrapper).
  m.mean = at::tensor(cfg.latents_mean).view({cfg.z_dim, 1, 1, 1});
  m.inv_std = (1.0f / at::tensor(cfg.latents_std)).view({cfg.z_dim, 1, 1, 1});
}

void WanVAE::to(at::Device device, at::ScalarType dtype) {
  auto mv = [&](at::Tensor& t) {
    if (t.defined()) t = t.to(device, dtype);
  };
  auto conv = [&](CausalConv3d& c) {
    mv(c.w);
    mv(c.b);
  };
  Impl& m = *impl_;
  for (Impl::Stack* st : {&m.encoder, &m.decoder}) {
    conv(st->conv_in);
    conv(st->head_conv);
    mv(st->head_gamma);
    std::vector<std::vector<Impl::Layer>*> lists{&st->middle};
    for (auto& lv : st->levels) lists.push_back(&lv.layers);
    for (auto* list : lists)
      for (auto& l : *list) {
        for (at::Tensor* t : {&l.gamma0, &l.gamma3, &l.norm_gamma, &l.qkv_w, &l.qkv_b, &l.proj_w, &l.proj_b,
                              &l.resample_w, &l.resample_b})
          mv(*t);
        for (CausalConv3d* c : {&l.conv_a, &l.conv_b, &l.shortcut, &l.time_conv}) conv(*c);
      }
  }
  conv(m.conv1);
  conv(m.conv2);
  m.mean = m.mean.to(device);
  m.inv_std = m.inv_std.to(device);
}

std::pair<at::Tensor, at::Tensor> WanVAE::encode_moments(const at::Tensor& videos, Trace* trace) const {
  const Impl& m = *impl_;
  const int64_t s = cfg_.spatial_stride(), ts = cfg_.temporal_stride();
  if (videos.dim() != 5 || videos.size(1) != 3 || (videos.size(2) - 1) % ts || videos.size(3) % s || videos.size(4) % s)
    throw Error(concat("VAE encode: video shape ", videos.sizes().slice(1), " must be [3, ", ts,
                       "k+1, H, W] with H, W multiples of ", s));
  const at::Tensor& w0 = m.encoder.conv_in.w;
  at::Tensor x = videos.to(w0.device(), w0.scalar_type());
  x = m.encoder.conv_in(cfg_.wan22 ? vae_patchify(x) : x, nullptr);
  for (size_t i = 0; i < m.encoder.levels.size(); ++i) {
    at::Tensor shortcut;
    x = m.run_level(m.encoder.levels[i], x, nullptr, false, trace ? &shortcut : nullptr);
    if (!trace) continue;
    (*trace)[concat("inter.enc.level", i)] = x[0];
    if (shortcut.defined()) (*trace)[concat("inter.enc.level", i, "_avg_shortcut")] = shortcut[0];
    if (i + 1 < m.encoder.levels.size()) (*trace)[concat("inter.enc.resample", i)] = x[0];
  }
  for (size_t i = 0; i < m.encoder.middle.size(); ++i) {
    x = m.run(m.encoder.middle[i], x, nullptr);
    if (trace && i == 1) (*trace)["inter.enc.middle_attn"] = x[0];
  }
  if (trace) (*trace)["inter.enc.middle"] = x[0];
  x = m.head(m.encoder, x, nullptr);
  if (trace) (*trace)["inter.enc.head"] = x[0];
  x = m.conv1(x, nullptr).to(at::kFloat);
  return {x.slice(1, 0, cfg_.z_dim), x.slice(1, cfg_.z_dim)};
}

at::Tensor WanVAE::encode(const at::Tensor& video, Trace* trace) const {
  if (video.dim() != 4) throw Error(concat("VAE encode: video shape ", video.sizes(), " must be [3, T, H, W]"));
  auto [mu, log_var] = encode_moments(video.unsqueeze(0), trace);
  if (trace) {
    (*trace)["mu_raw"] = mu[0];
    (*trace)["log_var"] = log_var[0];
  }
  return normalise(mu[0]);
}

at::Tensor WanVAE::normalise(const at::Tensor& raw) const { return (raw - impl_->mean) * impl_->inv_std; }

at::Tensor WanVAE::decode_raw(const at::Tensor& latent, Trace* trace, int64_t tile) const {
  const Impl& m = *impl_;
  const bool batched = latent.dim() == 5;
  if ((latent.dim() != 4 && !batched) || latent.size(batched ? 1 : 0) != cfg_.z_dim)
    throw Error(concat("VAE decode: latent shape ", latent.sizes(), " must be [", cfg_.z_dim, ", F, h, w]"));
  const int64_t s = cfg_.spatial_stride();
  if (tile != 0 && (tile < 2 * s || tile % s))
    throw Error(concat("VAE decode: tile size ", tile, " must be 0 (off) or a multiple of ", s, " from ", 2 * s));
  const at::Tensor& w0 = m.conv2.w;
  const at::Tensor z = latent.to(w0.device(), at::kFloat) / m.inv_std + m.mean;
  const at::Tensor zb = batched ? z : z.unsqueeze(0);
  const int64_t h = zb.size(3), w = zb.size(4);
  if (tile == 0 || (tile >= h * s && tile >= w * s)) {
    at::Tensor video = decode_frames(zb, trace);
    return batched ? video : video[0];
  }
  // Spatial tiles (diffusers AutoencoderKLWan.tiled_decode): latent tiles of
  // tile/8 cells every 3/4 of that, each decoded over all frames with its own
  // causal caches; a tile's first quarter is blended linearly into its
  // upper / left neighbour, then every tile keeps its first 3/4.
  const int64_t lt = tile / s, stride = lt * 3 / 4, blend = (lt - stride) * s, keep = stride * s;
  std::vector<std::vector<at::Tensor>> rows;
  for (int64_t i = 0; i < h; i += stride) {
    rows.emplace_back();
    for (int64_t j = 0; j < w; j += stride)
      rows.back().push_back(decode_frames(zb.slice(3, i, i + lt).slice(4, j, j + lt), nullptr));
  }
  // b's first `extent` rows (dim 3) or columns (dim 4) fade in over a's last.
  auto blend_into = [](const at::Tensor& a, at::Tensor b, int64_t dim, int64_t extent) {
    extent = std::min({extent, a.size(dim), b.size(dim)});
    if (extent == 0) return b;
    std::vector<int64_t> shape(5, 1);
    shape[static_cast<size_t>(dim)] = extent;
    const at::Tensor ramp = at::arange(extent, b.options()).div(static_cast<double>(extent)).view(shape);
    b = b.clone();
    b.narrow(dim, 0, extent).copy_(a.narrow(dim, a.size(dim) - extent, extent) * (1 - ramp) + b.narrow(dim, 0, extent) * ramp);
    return b;
  };
  std::vector<at::Tensor> out_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<at::Tensor> out_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      at::Tensor t = rows[i][j];
      if (i > 0) t = blend_into(rows[i - 1][j], t, 3, blend);
      if (j > 0) t = blend_into(rows[i][j - 1], t, 4, blend);
      out_row.push_back(t.slice(3, 0, keep).slice(4, 0, keep));
    }
    out_rows.push_back(at::cat(out_row, 4));
  }
  at::Tensor video = at::cat(out_rows, 3).slice(3, 0, h * s).slice(4, 0, w * s);
  return batched ? video : video[0];
}

// Post-quant conv and the decoder over z [B, z, F, h, w] (normalisation
// already undone), one latent frame at a time with the causal caches.
at::Tensor WanVAE::decode_frames(const at::Tensor& z_in, Trace* trace) const {
  const Impl& m = *impl_;
  const at::Tensor z = m.conv2(z_in.to(m.conv2.w.scalar_type()), nullptr);
  StreamState state;
  state.frames.resize(static_cast<size_t>(m.num_slots));
  state.started.assign(static_cast<size_t>(m.num_up), 0);
  std::map<std::string, std::vector<at::Tensor>> pieces;
  auto record = [&](const std::string& key, const at::Tensor& t) {
    if (trace) pieces[key].push_back(t[0]);
  };
  std::vector<at::Tensor> frames;
  for (int64_t f = 0; f < z.size(2); ++f) {
    state.first_chunk = f == 0;
    at::Tensor x = z.slice(2, f, f + 1);
    record("inter.dec.conv2", x);
    x = m.decoder.conv_in(x, &state);
    record("inter.dec.conv1", x);
    for (size_t i = 0; i < m.decoder.middle.size(); ++i) {
      x = m.run(m.decoder.middle[i], x, &state);
      if (i == 1) record("inter.dec.middle_attn", x);
    }
    record("inter.dec.middle", x);
    int up = 0;
    for (size_t i = 0; i < m.decoder.levels.size(); ++i) {
      const Impl::Level& lv = m.decoder.levels[i];
      at::Tensor shortcut;
      x = m.run_level(lv, x, &state, true, trace ? &shortcut : nullptr);
      record(concat("inter.dec.level", i), x);
      if (shortcut.defined()) record(concat("inter.dec.level", i, "_dup_shortcut"), shortcut);
      if (!lv.layers.empty() && lv.layers.back().kind == Impl::Kind::Up3d) record(concat("inter.dec.resample", up++), x);
    }
    x = m.head(m.decoder, x, &state).to(at::kFloat);
    frames.push_back(cfg_.wan22 ? vae_unpatchify(x) : x);
  }
  if (trace)
    for (auto& [key, list] : pieces) (*trace)[key] = at::cat(list, 1);
  return at::cat(frames, 2);
}

at::Tensor WanVAE::decode(const at::Tensor& latent, int64_t tile) const {
  return decode_raw(latent, nullptr, tile).clamp(-1, 1);
}

}  // namespace kino
