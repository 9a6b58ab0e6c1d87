// kino-train's masks and losses (src/train/training.h): the pixels each
// loss term weights, and the latent normalisation the decoder is trained on.
#include <gtest/gtest.h>

#include "kino/manifest.h"
#include "train/training.h"
#include "wan/generator.h"
#include "loading/weights.h"

namespace {

using namespace kino;

// A large white square, still, centred on a black background.
world::Scene white_square() {
  world::Scene s;
  s.color = 7;
  s.background = 0;
  s.shape = world::Shape::Square;
  s.large = true;
  return s;
}

}  // namespace

TEST(Training, ObjectMaskIsTheObjectAndNotTheBackground) {
  const world::Scene s = white_square();
  const at::Tensor x = train::render_clip(s, 64, 5).unsqueeze(0);
  const at::Tensor mask = train::object_mask(x, {s});
  EXPECT_EQ(mask.sizes(), at::IntArrayRef({1, 1, 5, 64, 64}));
  EXPECT_EQ(mask[0][0][0][32][32].item<float>(), 1.f);  // the centre
  EXPECT_EQ(mask[0][0][0][0][0].item<float>(), 0.f);    // a corner
  const double area = mask[0][0][0].sum().item<double>();
  EXPECT_GT(area, 64.0 * 64 * 0.05);
  EXPECT_LT(area, 64.0 * 64 * 0.5);
  EXPECT_TRUE(mask[0][0][0].equal(mask[0][0][4])) << "a still scene";
}

TEST(Training, LatentObjectMaskGroupsFrameZeroAloneThenFourFrames) {
  // 5 frames of 16x16 -> latent frames {0}, {1..4}, cells of 8x8 pixels;
  // one object pixel in frame 3 at (y 12, x 2): latent frame 1, cell (1, 0).
  at::Tensor mask = at::zeros({1, 1, 5, 16, 16});
  mask[0][0][3][12][2] = 1;
  const at::Tensor latent = train::latent_object_mask(mask, 4, 8);
  ASSERT_EQ(latent.sizes(), at::IntArrayRef({1, 2, 2, 2}));
  EXPECT_EQ(latent.sum().item<float>(), 1.f);
  EXPECT_EQ(latent[0][1][1][0].item<float>(), 1.f);
}

TEST(Training, HaloBandIsTheRingAroundTheObject) {
  at::Tensor mask = at::zeros({1, 1, 1, 32, 32});
  mask.slice(3, 10, 14).slice(4, 10, 14).fill_(1);  // a 4x4 object
  const at::Tensor band = train::halo_band(mask, 2);
  EXPECT_EQ(band.sum().item<float>(), 8 * 8 - 4 * 4);
  EXPECT_EQ((band * mask).sum().item<float>(), 0.f);
  EXPECT_EQ(band[0][0][0][8][8].item<float>(), 1.f);  // the diagonal corner of the ring
  EXPECT_EQ(band[0][0][0][7][10].item<float>(), 0.f);
}

TEST(Training, FrameEdgeBandIsTheFramesOuterPixels) {
  const at::Tensor band = train::frame_edge_band(at::zeros({2, 1, 3, 16, 20}), 3);
  ASSERT_EQ(band.sizes(), at::IntArrayRef({1, 1, 1, 16, 20}));
  EXPECT_EQ(band.sum().item<float>(), 16 * 20 - 10 * 14);
  EXPECT_EQ(band[0][0][0][15][19].item<float>(), 1.f);
  EXPECT_EQ(band[0][0][0][2][10].item<float>(), 1.f);
  EXPECT_EQ(band[0][0][0][3][3].item<float>(), 0.f);
}

TEST(Training, ReconstructionLossWeightsObjectHaloFrameEdgeAndAbsoluteError) {
  const world::Scene s = white_square();
  const at::Tensor x = train::render_clip(s, 64, 1).unsqueeze(0);
  EXPECT_EQ(train::object_weighted_rec(x, x, {s}, {4, 8, 0.1}).item<float>(), 0.f);
  // The same error on one pixel costs in proportion to that pixel's weight
  // (the normaliser, the sum of weights, is the same for all three).
  auto loss_with_error_at = [&](int64_t y, int64_t xx, double halo, double edge, double l1 = 0.1) {
    at::Tensor recon = x.clone();
    recon[0][0][0][y][xx] += 0.5;
    return train::object_weighted_rec(recon, x, {s}, {halo, edge, l1}).item<double>();
  };
  const double background = loss_with_error_at(32, 2, 0, 0);
  EXPECT_NEAR(loss_with_error_at(32, 32, 0, 0) / background, 10.0, 1e-4);  // object: 1 + 9
  EXPECT_NEAR(loss_with_error_at(32, 32, 4, 8) / loss_with_error_at(32, 6, 4, 8), 10.0, 1e-4);
  EXPECT_NEAR(loss_with_error_at(0, 0, 4, 8) / loss_with_error_at(32, 6, 4, 8), 9.0, 1e-4);  // edge: 1 + 8
  // An error of 0.5: squared 0.25, absolute 0.5.
  EXPECT_NEAR(loss_with_error_at(32, 32, 0, 0, 1) / loss_with_error_at(32, 32, 0, 0, 0), 3.0, 1e-4);
}

TEST(Training, StrayPixelsAreBackgroundPixelsDecodedFarFromTheBackground) {
  const world::Scene s = white_square();
  const at::Tensor x = train::render_clip(s, 64, 5).unsqueeze(0);  // 5 frames
  const at::Tensor mask = train::object_mask(x, {s});
  at::Tensor recon = x.clone();
  recon[0][0][2][32][32] += 1.0;  // the object: not stray
  recon[0][0][1][10][10] += 0.25;  // near the background: not stray
  recon[0][0][1][32][19] += 1.0;   // 2 pixels from the object (its first column is 21): not stray
  EXPECT_EQ(train::stray_pixels(recon, x, mask).item<float>(), 0.f);
  recon[0][0][3][63][63] += 0.6;  // a corner pixel: 0.3 beyond the margin
  EXPECT_NEAR(train::stray_pixels(recon, x, mask).item<float>(), 0.3 * 0.3 / 5, 1e-6);
  const double without = train::object_weighted_rec(recon, x, {s}).item<double>();
  EXPECT_NEAR(train::object_weighted_rec(recon, x, {s}, {0, 0, 0.1, 2}).item<double>() - without, 2 * 0.09 / 5, 1e-6);
}

// The decoder trains on encode_moments' raw latents; decode_raw takes
// normalised ones. A finished model's statistics are not (0, 1), so the two
// differ (the bug of the first decoder continuation): normalise() must give
// exactly what encode() returns.
TEST(Training, NormalisedRawLatentsAreWhatEncodeReturns) {
  const ModelManifest m = load_manifest(std::string(KINO_SOURCE_DIR) + "/models/kino-tiny");
  Weights w(m.vae);
  WanVAE vae(vae_config(m), w);
  w.finish();
  const world::Scene s = white_square();
  const at::Tensor x = train::render_clip(s, 32, 5);
  at::NoGradGuard no_grad;
  const at::Tensor raw = vae.encode_moments(x.unsqueeze(0)).first;
  const at::Tensor encoded = vae.encode(x);
  ASSERT_GT((raw[0] - encoded).abs().max().item<float>(), 0.1f) << "the model's statistics are not (0, 1)";
  EXPECT_TRUE(at::allclose(vae.normalise(raw)[0], encoded, 1e-5, 1e-5));
}
