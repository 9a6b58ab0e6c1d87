// The tiny random Wan models of the reference fixtures, loaded on the CPU in
// float32 (the configs of ../shared/fixtures/wan21-tiny/README.md).
#pragma once
#include "text/umt5.h"
#include "wan/dit.h"
#include "wan/vae.h"
#include "support.h"

namespace kino::test {

inline UMT5Config fixture_umt5_config() {
  UMT5Config c;
  c.vocab = 1000;
  c.dim = 64;
  c.dim_attn = 64;
  c.dim_ffn = 160;
  c.num_heads = 4;
  c.num_layers = 3;
  c.num_buckets = 32;
  return c;
}

inline UMT5Encoder fixture_umt5() {
  Weights w(fixture("t5_weights.safetensors"));
  UMT5Encoder enc(fixture_umt5_config(), w);
  w.finish();
  return enc;
}

inline WanDiTConfig fixture_dit_config() {
  WanDiTConfig c;
  c.dim = 64;
  c.ffn_dim = 128;
  c.freq_dim = 256;
  c.text_dim = 64;
  c.text_len = 32;
  c.num_heads = 4;
  c.num_layers = 2;
  return c;
}

inline WanDiT fixture_dit() {
  Weights w(fixture("dit_weights.safetensors"));
  WanDiT dit(fixture_dit_config(), w);
  w.finish();
  return dit;
}

inline WanVAE fixture_vae() {
  WanVAEConfig c;
  c.dim = 8;
  Weights w(fixture("vae_weights.safetensors"));
  WanVAE vae(c, w);
  w.finish();
  return vae;
}

}  // namespace kino::test
