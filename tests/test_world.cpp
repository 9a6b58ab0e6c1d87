// The synthetic world: captions, held-out split, and the pixel measurement
// that the prompt-following evaluation relies on (checked on ground truth).
#include <gtest/gtest.h>

#include <set>

#include "world/world.h"

using namespace kino::world;

TEST(World, MeasurementRecoversEveryAttributeOfRenderedScenes) {
  std::mt19937 rng(3);
  int n = 0;
  for (bool held_out : {false, true})
    for (int i = 0; i < 150; ++i, ++n) {
      const Scene s = random_scene(rng, held_out);
      const Measurement m = measure(render(s, 128, 128, 17), 128, 128, 17);
      ASSERT_TRUE(m.object_found) << canonical_caption(s, Language::English);
      EXPECT_EQ(m.background, s.background) << canonical_caption(s, Language::English);
      EXPECT_EQ(m.color, s.color) << canonical_caption(s, Language::English);
      EXPECT_EQ(m.shape, s.shape) << canonical_caption(s, Language::English) << " fill " << m.fill_ratio;
      EXPECT_EQ(m.motion, s.motion) << canonical_caption(s, Language::English) << " dx " << m.dx << " dy " << m.dy
                                    << " area " << m.area_ratio;
    }
  EXPECT_EQ(n, 300);
}

TEST(World, HeldOutCombinationsNeverAppearInTraining) {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000; ++i) {
    const Scene s = random_scene(rng, false);
    EXPECT_FALSE(is_held_out(s));
    EXPECT_TRUE(is_valid(s));
  }
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(is_held_out(random_scene(rng, true)));
}

TEST(World, WhiteOnWhiteIsTheOnlyInvalidPair) {
  int invalid = 0;
  for (int c = 0; c < 8; ++c)
    for (int b = 0; b < 4; ++b) {
      Scene s;
      s.color = c;
      s.background = b;
      invalid += !is_valid(s);
      if (!is_valid(s)) {
        EXPECT_TRUE(c == 7 && b == 1);
      }
    }
  EXPECT_EQ(invalid, 1);
}

TEST(World, CaptionsUseSeveralTemplatesInBothLanguages) {
  std::mt19937 rng(9);
  Scene s;
  s.color = 0;
  s.background = 0;
  s.shape = Shape::Circle;
  s.large = true;
  s.motion = Motion::Right;
  EXPECT_EQ(canonical_caption(s, Language::English), "a large red circle moving to the right on a black background");
  EXPECT_EQ(canonical_caption(s, Language::German), "ein großer roter Kreis bewegt sich nach rechts auf schwarzem Hintergrund");
  s.shape = Shape::Square;
  s.large = false;
  s.color = 2;
  s.background = 2;
  s.motion = Motion::Up;
  EXPECT_EQ(canonical_caption(s, Language::German), "ein kleines blaues Quadrat bewegt sich nach oben auf grauem Hintergrund");
  std::set<std::string> en, de;
  for (int i = 0; i < 200; ++i) {
    en.insert(caption(s, Language::English, rng));
    de.insert(caption(s, Language::German, rng));
  }
  EXPECT_GE(en.size(), 20u);
  EXPECT_GE(de.size(), 10u);
}

TEST(World, PartialCaptionsLeaveOutTheColourOrTheShape) {
  Scene s;
  s.color = 3;  // yellow / gelb
  s.shape = Shape::Circle;
  s.large = true;
  s.background = 0;
  s.motion = Motion::Left;
  std::mt19937 rng(5);
  for (int i = 0; i < 100; ++i) {
    const std::string no_color_en = caption(s, Language::English, rng, Omit::Color);
    const std::string no_color_de = caption(s, Language::German, rng, Omit::Color);
    const std::string no_shape_en = caption(s, Language::English, rng, Omit::Shape);
    const std::string no_shape_de = caption(s, Language::German, rng, Omit::Shape);
    EXPECT_EQ(no_color_en.find("yellow"), std::string::npos) << no_color_en;
    EXPECT_EQ(no_color_de.find("gelb"), std::string::npos) << no_color_de;
    EXPECT_EQ(no_color_en.find("  "), std::string::npos) << no_color_en;
    EXPECT_NE(no_shape_en.find("yellow shape"), std::string::npos) << no_shape_en;
    for (const char* shape : {"circle", "disc", "ball", "Kreis", "Ball"}) {
      EXPECT_EQ(no_shape_en.find(shape), std::string::npos) << no_shape_en;
      EXPECT_EQ(no_shape_de.find(shape), std::string::npos) << no_shape_de;
    }
    // "Objekt" is neuter: "ein großes gelbes Objekt", "das große gelbe Objekt".
    EXPECT_TRUE(no_shape_de.find("großes gelbes Objekt") != std::string::npos ||
                no_shape_de.find("das große gelbe Objekt") != std::string::npos)
        << no_shape_de;
  }
}
