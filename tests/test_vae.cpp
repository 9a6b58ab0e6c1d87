// Wan VAE parity (encode, chunked decode) with WanVAE on the tiny fixture.
#include <gtest/gtest.h>

#include "kino/error.h"
#include "kino/wan_vae.h"
#include "fixture_models.h"
#include "support.h"

using namespace kino;

TEST(WanVAE, NormalisationConstantsAreWans) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("vae_io.safetensors"));
  WanVAEConfig c;
  EXPECT_TRUE(at::equal(at::tensor(c.latents_mean), io["mean"]));
  EXPECT_TRUE(at::equal(at::tensor(c.latents_std), io["std"]));
  EXPECT_TRUE(at::equal(1.0f / at::tensor(c.latents_std), io["inv_std"]));
}

TEST(WanVAE, EncodeMatchesReference) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("vae_io.safetensors"));
  WanVAE vae = test::fixture_vae();
  Trace trace;
  c10::InferenceMode inference;
  at::Tensor latent = vae.encode(io["video"], &trace);
  const std::string file = "vae_io.safetensors";
  for (const char* name : {"inter.enc.resample0", "inter.enc.resample1", "inter.enc.resample2", "inter.enc.middle", "mu_raw", "log_var"})
    EXPECT_PARITY(trace.at(name), io[name], file, name);
  EXPECT_PARITY(latent, io["latent"], file, "latent");
}

TEST(WanVAE, DecodeMatchesReference) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("vae_io.safetensors"));
  WanVAE vae = test::fixture_vae();
  Trace trace;
  c10::InferenceMode inference;
  at::Tensor raw = vae.decode_raw(io["latent"], &trace);
  const std::string file = "vae_io.safetensors";
  for (const char* name : {"inter.dec.conv2", "inter.dec.conv1", "inter.dec.middle", "inter.dec.resample0", "inter.dec.resample1"})
    EXPECT_PARITY(trace.at(name), io[name], file, name);
  EXPECT_PARITY(raw, io["decoded_raw"], file, "decoded_raw");
  EXPECT_PARITY(vae.decode(io["latent"]), io["decoded"], file, "decoded");
}

TEST(WanVAE, DecodeOfLongerNonSquareLatent) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("vae_io.safetensors"));
  WanVAE vae = test::fixture_vae();
  c10::InferenceMode inference;
  EXPECT_PARITY(vae.decode_raw(io["z5"]), io["decoded5_raw"], "vae_io.safetensors", "decoded5_raw");
  EXPECT_PARITY(vae.decode(io["z5"]), io["decoded5"], "vae_io.safetensors", "decoded5");
}

TEST(WanVAE, RejectsVideosThatAreNot4kPlus1Frames) {
  KINO_REQUIRE_FIXTURES();
  WanVAE vae = test::fixture_vae();
  c10::InferenceMode inference;
  EXPECT_THROW(vae.encode(at::zeros({3, 8, 32, 32})), Error);
  EXPECT_THROW(vae.encode(at::zeros({3, 9, 30, 32})), Error);
}
