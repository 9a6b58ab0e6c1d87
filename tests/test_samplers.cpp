// Flow samplers: schedules and scripted step-by-step runs against Wan's
// FlowUniPCMultistepScheduler and FlowDPMSolverMultistepScheduler.
#include <gtest/gtest.h>

#include "kino/error.h"
#include "kino/manifest.h"
#include "wan/generator.h"
#include "sampling/sampler.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kFile = "scheduler_io.safetensors";

std::map<std::string, at::Tensor>& io() {
  static auto tensors = test::load_tensors(test::fixture(kFile));
  return tensors;
}

}  // namespace

TEST(Samplers, SchedulesMatchExactly) {
  KINO_REQUIRE_FIXTURES();
  for (auto [kind, name] : {std::pair{SamplerKind::UniPC, "unipc"}, std::pair{SamplerKind::DPMpp, "dpmpp"}})
    for (int steps : {4, 10, 50})
      for (int shift : {1, 3, 5}) {
        const std::string key = std::string(name) + ".steps" + std::to_string(steps) + ".shift" + std::to_string(shift);
        Schedule s = make_schedule(kind, steps, shift);
        EXPECT_TRUE(at::equal(at::tensor(s.timesteps, at::kLong), io()[key + ".timesteps"])) << key;
        EXPECT_TRUE(at::equal(at::tensor(s.sigmas), io()[key + ".sigmas"])) << key;
      }
}

class ScriptedRun : public ::testing::TestWithParam<std::tuple<const char*, int, int>> {};

TEST_P(ScriptedRun, EveryStepMatches) {
  KINO_REQUIRE_FIXTURES();
  const auto [name, steps, shift] = GetParam();
  const std::string key = std::string(name) + ".run.steps" + std::to_string(steps) + ".shift" + std::to_string(shift);
  ASSERT_TRUE(io().count(key + ".x_init")) << key << " not in the fixture";
  const bool unipc = std::string(name) == "unipc";
  auto sampler = Sampler::create(unipc ? SamplerKind::UniPC : SamplerKind::DPMpp, steps, shift);
  at::Tensor x = io()[key + ".x_init"];
  for (int64_t i = 0; i < steps; ++i) {
    const std::string at_step = key + " step " + std::to_string(i);
    x = sampler->step(io()[key + ".model_outputs"][i], x);
    const auto& info = sampler->last_step();
    EXPECT_PARITY(info.x0, io()[key + ".x0_pred"][i], kFile, key + ".x0_pred");
    EXPECT_PARITY(x, io()[key + ".x_after_step"][i], kFile, key + ".x_after_step");
    if (unipc) {
      EXPECT_PARITY(info.corrected, io()[key + ".corrected_sample"][i], kFile, key + ".corrected_sample");
      EXPECT_EQ(info.order, io()[key + ".predictor_order"][i].item<int64_t>()) << at_step;
      EXPECT_EQ(info.corrector_order, io()[key + ".corrector_order"][i].item<int64_t>()) << at_step;
    } else {
      EXPECT_EQ(info.order, io()[key + ".order"][i].item<int64_t>()) << at_step;
    }
  }
  if (unipc) {
    // The last step returns x0 of the last uncorrected input exactly.
    EXPECT_TRUE(at::equal(x, sampler->last_step().x0));
  }
}

// The (steps, shift) runs the fixture scripts, for both solvers.
INSTANTIATE_TEST_SUITE_P(Runs, ScriptedRun,
                         ::testing::Values(std::make_tuple("unipc", 4, 5), std::make_tuple("unipc", 10, 3),
                                           std::make_tuple("unipc", 50, 5), std::make_tuple("unipc", 10, 1),
                                           std::make_tuple("dpmpp", 4, 5), std::make_tuple("dpmpp", 10, 3),
                                           std::make_tuple("dpmpp", 50, 5), std::make_tuple("dpmpp", 10, 1)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_steps" + std::to_string(std::get<1>(info.param)) +
                                  "_shift" + std::to_string(std::get<2>(info.param));
                         });

TEST(Samplers, EulerIsExactOnAStraightFlow) {
  // On x_sigma = (1 - sigma) x0 + sigma * eps the true velocity is eps - x0
  // everywhere, so Euler must land on x0 for any schedule.
  at::Tensor x0 = at::randn({16, 2, 4, 4}), eps = at::randn({16, 2, 4, 4});
  for (double shift : {1.0, 5.0}) {
    auto s = Sampler::create(SamplerKind::Euler, 7, shift);
    at::Tensor x = eps;
    for (int i = 0; i < 7; ++i) x = s->step(eps - x0, x);
    EXPECT_LT(test::rel_error(x, x0), 1e-6);
  }
}

TEST(Samplers, RejectImpossibleSettings) {
  EXPECT_THROW(make_schedule(SamplerKind::UniPC, 0, 5.0), Error);
  EXPECT_THROW(make_schedule(SamplerKind::UniPC, 10, -1.0), Error);
  EXPECT_THROW(parse_sampler("ddim"), Error);
  auto s = Sampler::create(SamplerKind::Euler, 1, 1.0);
  s->step(at::zeros({1}), at::zeros({1}));
  EXPECT_THROW(s->step(at::zeros({1}), at::zeros({1})), Error);
}

// LightX2V's WanStepDistillScheduler (../shared/fixtures/wan21-cache-tiny
// distill_io): the float32 schedule with fractional timesteps exactly, the
// scripted steps, and the end-to-end 4-step unguided run on the tiny models
// (the official float64 time sinusoid) with one DiT pass per step.
TEST(Samplers, DistillMatchesLightX2V) {
  KINO_REQUIRE_FIXTURES();
  const std::string set = "wan21-cache-tiny", file = "distill_io.safetensors";
  const auto d = test::load_tensors(test::fixture(file, set));
  const Schedule s = make_schedule(SamplerKind::Distill, 4, 5.0);
  EXPECT_TRUE(at::equal(at::tensor(s.timesteps, at::kDouble).to(at::kFloat), d.at("schedule.timesteps")));
  EXPECT_TRUE(at::equal(at::tensor(std::vector<float>(s.sigmas.begin(), s.sigmas.end() - 1)), d.at("schedule.sigmas")));
  EXPECT_EQ(s.timesteps[1], 937.5);

  auto sampler = Sampler::create(SamplerKind::Distill, 4, 5.0);
  at::Tensor x = d.at("scripted.x_init");
  for (int64_t i = 0; i < 4; ++i) {
    x = sampler->step(d.at("scripted.model_outputs")[i], x);
    const double err = test::rel_error(x, d.at("scripted.fp32.latents")[i]);
    EXPECT_LE(err, test::tolerance(file, "scripted.fp32.latents", set)) << "step " << i;
  }

  const ModelManifest m = load_manifest(test::fixture_manifest_path());
  const WanGenerator g(m, at::kCPU, at::kFloat);
  const std::string p = "e2e.f64emb.";
  const at::Tensor cond = d.at("context_cond");
  int64_t passes = 0;
  const at::Tensor latent = g.sample(d.at("noise"), cond, cond, SamplerKind::Distill, 4, 5.0, 1.0, [&](const WanGenerator::Step& st) {
    passes += st.uncond.defined() ? 2 : 1;
    EXPECT_LE(test::rel_error(st.cond, d.at(p + "dit_out")[st.index]), test::tolerance(file, p + "dit_out", set)) << st.index;
    EXPECT_LE(test::rel_error(st.latent, d.at(p + "latents")[st.index]), test::tolerance(file, p + "latents", set)) << st.index;
  });
  EXPECT_EQ(passes, 4) << "guidance 1 runs the prompt's pass alone";
  const double err = test::rel_error(g.decode(latent), d.at(p + "video"));
  std::printf("[ parity ] distill e2e video rel %.3e (tol %.0e)\n", err, test::tolerance(file, p + "video", set));
  EXPECT_LE(err, test::tolerance(file, p + "video", set));
}
