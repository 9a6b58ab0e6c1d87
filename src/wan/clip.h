// The CLIP image encoder of Wan2.1 I2V and FLF2V (wan/modules/clip.py
// CLIPModel.visual: the vision tower of XLM-RoBERTa-CLIP ViT-H/14): a bicubic
// resize to image_size, CLIP's mean/std, a ViT with pre-norm whose output is
// that of its penultimate block (no post-norm, no head).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "loading/weights.h"
#include "nn/nn.h"
#include "wan/configs.h"

namespace kino {

class ClipVision {
 public:
  ClipVision(const ClipVisionConfig& cfg, Weights& w);

  // images: [3, H, W] in [-1, 1] each (any sizes) -> features [N, 1 + g^2, dim].
  at::Tensor forward(const std::vector<at::Tensor>& images, Trace* trace = nullptr) const;

  const ClipVisionConfig& config() const { return cfg_; }
  at::ScalarType dtype() const { return patch_w_.scalar_type(); }
  void to(at::Device device, at::ScalarType dtype);
  void pin_memory();

 private:
  struct Block {
    at::Tensor norm1_w, norm1_b, norm2_w, norm2_b;
    nn::Linear qkv, proj, fc1, fc2;
  };
  // f(official name, tensor, shape) for every weight the encoder runs with.
  template <typename F>
  void parameters(F&& f);

  ClipVisionConfig cfg_;
  at::Tensor patch_w_, cls_, pos_, pre_norm_w_, pre_norm_b_;
  std::vector<Block> blocks_;  // the first layers - 1 blocks: the penultimate block's output is the features
};

}  // namespace kino
