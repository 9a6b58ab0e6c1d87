// Wan diffusion transformer (wan/modules/model.py WanModel, t2v; Wan2.2's
// TI2V-5B is the same with 48 channels): 1x2x2 spacetime patches, 3-axis
// RoPE, qk RMS-norm, adaLN-style modulation from the timestep, cross-attention
// to the text context.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <vector>

#include "loading/weights.h"
#include "nn/block_stream.h"
#include "nn/nn.h"
#include "wan/configs.h"

namespace kino {

// Step caching's hook into the blocks (TeaCache, MagCache): with `add`,
// the blocks do not run and `add` [B, seq_len, dim] is added to the embedded
// tokens instead; otherwise they run and, with `residual`, their total
// change (tokens after the blocks minus before, float32) is stored there.
struct BlockResidual {
  at::Tensor add;
  at::Tensor* residual = nullptr;
};

// VACE's input (vace_model.py VaceWanModel.forward): per sample the VACE
// context [vace_in_dim, F, H, W] (the latent's grid) its blocks read, and
// the scale of their hints (vace_context_scale).
struct VaceInput {
  std::vector<at::Tensor> context;
  double scale = 1.0;
};

class WanDiT {
 public:
  WanDiT(const WanDiTConfig& cfg, Weights& w);

  // Batched forward. x: per-sample latents [C, F, H, W] (sizes may differ);
  // t: timesteps, one per sample; context: per-sample [L_i, text_dim]
  // with L_i <= text_len; seq_len: padded token count (>= every sample's).
  // first_frame_t (Wan2.2 image-to-video; empty: t): per sample, the
  // timestep of the tokens of latent frame 0, which Wan2.2's per-token time
  // embedding and modulation then apply to those tokens alone.
  // image (Wan2.1 I2V/FLF2V, config image_dim > 0): per sample, the CLIP
  // features [tokens, image_dim] the cross-attention also attends to
  // (FLF2V: the first frame's tokens, then the last frame's).
  // vace (config vace_in_dim > 0): the VACE blocks' input; their hints
  // are added to the outputs of the main blocks of vace_layers.
  // Returns per-sample velocities shaped like x.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& x, const std::vector<double>& t,
                                  const std::vector<at::Tensor>& context, int64_t seq_len, Trace* trace = nullptr,
                                  const std::vector<double>& first_frame_t = {},
                                  const std::vector<at::Tensor>& image = {}, BlockResidual* cache = nullptr,
                                  const VaceInput* vace = nullptr) const;
  // The time embedding e [1, dim] and its projection e0 [1, 6, dim] at
  // timestep t (float32): what TeaCache compares between steps.
  std::pair<at::Tensor, at::Tensor> time_embedding(double t) const;

  const WanDiTConfig& config() const { return cfg_; }
  // Moves the weights; `dtype` applies to the matrices, while modulation,
  // norms and embeddings of time stay float32 as in the official code.
  void to(at::Device device, at::ScalarType dtype);
  // Moves the weights as they are (dtypes kept).
  void to(at::Device device);
  // Page-locks host weights, for fast copies to a GPU.
  void pin_memory();
  // Block streaming (`--offload blocks`): with the weights in host memory
  // (to(kCPU, dtype)), everything but the blocks' matrices moves to
  // `device`; the matrices stay on the host (pinned for a GPU) and each
  // forward copies them in `ahead` blocks before use (nn/block_stream.h).
  void stream_blocks(at::Device device, int ahead = 1);
  // Blocks whose matrices are on the device now (all of them unless streamed).
  size_t resident_blocks() const { return stream_ ? stream_->resident() : blocks_.size(); }
  // Bytes the weights take where they are: dense tensors at their dtype,
  // packed layers at their stored size.
  int64_t weight_bytes() const;

 private:
  struct Attention {
    nn::Linear q, k, v, o;
    at::Tensor norm_q, norm_k;
    nn::Linear k_img, v_img;  // I2V cross-attention: keys and values of the image tokens
    at::Tensor norm_k_img;
  };
  struct Block {
    at::Tensor modulation;  // [1, 6, dim]
    Attention self_attn, cross_attn;
    at::Tensor norm3_w, norm3_b;
    nn::Linear ffn0, ffn2;
    std::vector<nn::Linear*> linears() {
      return {&self_attn.q, &self_attn.k, &self_attn.v, &self_attn.o, &cross_attn.q, &cross_attn.k,
              &cross_attn.v, &cross_attn.o, &cross_attn.k_img, &cross_attn.v_img, &ffn0, &ffn2};
    }
  };
  // A VACE block: a main block's layers, after_proj (its hint) and, in the
  // first, before_proj (of the VACE tokens).
  struct VaceBlock {
    Block block;
    nn::Linear before_proj, after_proj;
  };
  using Grid = std::array<int64_t, 3>;  // a sample's patches: frames, rows, columns
  struct Modulation;
  struct TimeEmbedding;
  struct Step;  // what one forward's blocks share

  // f(official name, tensor, shape, float32) for every tensor and f(name,
  // layer, in, out, float32) for every linear layer, in the order they
  // load: the one list that loading, to() and pin_memory() walk.
  // `float32`: kept in float32 whatever the run dtype (time embedding,
  // modulation, norms), as in the official code.
  template <typename F>
  void parameters(F&& f);
  template <typename F>
  void block_parameters(Block& b, const std::string& name, F&& f);

  // The stages of forward (model.py WanModel.forward), in order.
  at::Tensor patchify(const std::vector<at::Tensor>& x, const at::Tensor& weight, const at::Tensor& bias, int64_t seq_len,
                      std::vector<Grid>& grids) const;
  TimeEmbedding embed_time(const std::vector<double>& t, const std::vector<double>& first_frame_t,
                           const std::vector<Grid>& grids, int64_t seq_len) const;
  at::Tensor embed_text(const std::vector<at::Tensor>& context) const;
  at::Tensor embed_image(const std::vector<at::Tensor>& image) const;
  at::Tensor self_attention_bias(const std::vector<Grid>& grids, int64_t seq_len) const;
  at::Tensor rope_table(const std::vector<Grid>& grids, int64_t seq_len) const;
  at::Tensor attend(const Attention& a, const at::Tensor& q_in, const at::Tensor& kv_in, bool self, const Step& step,
                    bool traced) const;
  std::vector<at::Tensor> vace_hints(const VaceInput& vace, const at::Tensor& x_tokens, const std::vector<Grid>& grids,
                                     int64_t seq_len, const TimeEmbedding& te, const Modulation& head, const Step& step) const;
  std::pair<at::Tensor, at::Tensor> block(const Block& b, bool traced, at::Tensor h, const at::Tensor& xin, const Modulation& m,
                                          const Modulation& next, const Step& step, const at::Tensor& hint = {}) const;
  std::vector<at::Tensor> unpatchify(const at::Tensor& out, const std::vector<Grid>& grids) const;

  WanDiTConfig cfg_;
  at::Tensor patch_w_, patch_b_;
  nn::Linear text0_, text2_, time0_, time2_, time_proj_;
  // img_emb (MLPProj): LayerNorm, Linear, GELU, Linear, LayerNorm; FLF2V's emb_pos.
  at::Tensor img_norm0_w_, img_norm0_b_, img_norm4_w_, img_norm4_b_, img_pos_;
  nn::Linear img1_, img3_;
  std::vector<Block> blocks_;
  at::Tensor vace_patch_w_, vace_patch_b_;
  std::vector<VaceBlock> vace_blocks_;  // resident, also under stream_blocks
  // Set by stream_blocks(); shared by copies (an expert's visiting copy).
  std::shared_ptr<nn::BlockStream<Block>> stream_;
  at::Tensor head_modulation_;
  nn::Linear head_;
  at::Tensor rope_cos_, rope_sin_;  // float64 [1024, head_dim / 2]
};

}  // namespace kino
