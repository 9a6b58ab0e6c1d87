// umT5 encoder (wan/modules/t5.py T5Encoder): per-layer relative position
// bias, gated-GELU FFN, T5 RMS norm, no logit scaling.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "text/umt5_config.h"
#include "loading/weights.h"

namespace kino {


// Bucket of the relative position rel = key - query (bidirectional T5).
int64_t t5_relative_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance);

class UMT5Encoder {
 public:
  UMT5Encoder(const UMT5Config& cfg, Weights& w);

  // ids, mask: [B, L] int64 -> [B, L, dim]. Keys with mask 0 are ignored;
  // rows at padded positions are computed but meaningless.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, Trace* trace = nullptr) const;

  const UMT5Config& config() const { return cfg_; }
  void to(const at::TensorOptions& options);
  // Page-locked host memory: uploads to a GPU run at full PCIe speed.
  void pin_memory();

 private:
  struct Block {
    at::Tensor norm1, norm2, pos_embedding;
    nn::Linear q, k, v, o, gate, fc1, fc2;  // no biases
  };
  at::Tensor position_bias(const at::Tensor& table, int64_t len) const;  // [1, H, L, L]
  // f(official name, tensor, shape) for every tensor, f(official name,
  // layer, in, out) for every linear layer and embedding, in the order they
  // load: the one list that loading, to() and pin_memory() walk.
  template <typename F>
  void parameters(F&& f);

  UMT5Config cfg_;
  nn::Embedding token_embedding_;
  at::Tensor final_norm_, shared_pos_embedding_;
  std::vector<Block> blocks_;
};

}  // namespace kino
