// kino-tiny follows prompts: 12 prompts of the synthetic world (4 English,
// 4 German, 4 held-out combinations) rendered with fixed seeds and measured
// from pixels. Thresholds are below the full evaluation's accuracy (see
// models/kino-tiny/eval.md) so that the tests guard against regressions.
#include <gtest/gtest.h>

#include <filesystem>

#include "world/evaluate.h"
#include "kino/manifest.h"
#include "support.h"

namespace {

struct Counts {
  int n = 0, background = 0, color = 0, shape = 0, motion = 0;
  std::string cases;  // the per-prompt report, for failure messages
};

Counts render_twelve_prompts() {
  const std::string model = std::string(KINO_SOURCE_DIR) + "/models/kino-tiny";
  EXPECT_TRUE(std::filesystem::exists(model + "/kino.json")) << "kino-tiny is missing from models/";
  kino::Pipeline pipeline(kino::load_manifest(model), kino::RuntimeOptions{});
  const kino::EvalReport r = kino::evaluate(pipeline, kino::make_eval_cases(4, 2026));
  std::printf("%s", r.table().c_str());
  Counts c;
  for (const auto* g : {&r.english, &r.german, &r.held_out}) {
    c.n += g->n;
    c.background += g->background;
    c.color += g->color;
    c.shape += g->shape;
    c.motion += g->motion;
  }
  c.cases = r.to_json()["cases"].dump(1);
  return c;
}

}  // namespace

// What the shipped kino-tiny follows, checked on one rendering of the 12
// prompts (4 English, 4 German, 4 held-out). Each threshold is one that a
// model at the full evaluation's per-group rates (144 prompts,
// models/kino-tiny/eval.md) misses with probability <= 1%:
// - background: 100% in every group (144 of 144); these 12 get 11; fewer
//   than 10 has probability 0.02% even at 47.5 of 48; chance is 3 of 12.
// - object colour: 91.7 / 97.9 / 83.3% (the held-out colour x shape pairs
//   lag); these 12 get 10; fewer than 8 has probability 0.2%; chance is 1.5
//   of 12 (8 colours), 8 or more by chance 0.002%.
// - motion: 95.8 / 97.9 / 89.6%; these 12 get 9; fewer than 9 has
//   probability 0.3%; chance is 1.7 of 12 (7 motions); weights whose motion
//   was 62.5% (an earlier recipe) reach 9 with probability 28%.
TEST(PromptFollowing, KinoTinyRendersTheBackgroundColourAndMotionTheCaptionSays) {
  const Counts c = render_twelve_prompts();
  ASSERT_EQ(c.n, 12);
  EXPECT_GE(c.background, 10) << c.cases;
  EXPECT_GE(c.color, 8) << c.cases;
  EXPECT_GE(c.motion, 9) << c.cases;
}

// Disabled: the targets (colour >= 90%, shape >= 80%, motion >= 85%
// on held-out prompts), not met yet (issue 3 open; full evaluation: held-out
// colour 83%, shape 33% where chance is 33%); enable once a model passes the
// full evaluation.
TEST(PromptFollowing, DISABLED_KinoTinyRendersTheObjectTheCaptionSays) {
  const Counts c = render_twelve_prompts();
  ASSERT_EQ(c.n, 12);
  EXPECT_GE(c.color, 10) << c.cases;
  EXPECT_GE(c.shape, 8) << c.cases;
  EXPECT_GE(c.motion, 10) << c.cases;
}
