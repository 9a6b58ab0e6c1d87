// Step caching against ../shared/fixtures/wan21-cache-tiny: each method's
// decisions (which of the 48 transformer calls ran), its accumulated
// indicator, the transformer outputs, latents and video of the reference
// scripts' runs on the tiny model, through the library and the CLI.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "kino/manifest.h"
#include "kino/pipeline.h"
#include "request/cache_spec.h"
#include "sampling/step_cache.h"
#include "support.h"
#include "wan/configs.h"
#include "wan/generator.h"

using namespace kino;

namespace {

const std::string kSet = "wan21-cache-tiny";

struct Case {
  const char* file;
  const char* spec;  // the script's settings, as --cache spells them
};
const Case kCases[] = {{"teacache_io.safetensors", "teacache:1000"},
                       {"teacache_ret_io.safetensors", "teacache:-40000,ret_steps"},
                       {"magcache_io.safetensors", "magcache:0.12,k=2,retention=0.2"},
                       {"easycache_io.safetensors", "easycache:0.8"}};

double tol(const std::string& file, const std::string& tensor) {
  static const nlohmann::json m = [] {
    std::ifstream in(test::fixture("MANIFEST.json", kSet));
    return nlohmann::json::parse(in);
  }();
  const auto& t = m.at("files").at(file).at("tensors");
  if (t.contains(tensor) && t.at(tensor).contains("rel_tol") && t.at(tensor)["rel_tol"].is_number())
    return t.at(tensor)["rel_tol"].get<double>();
  return 1e-4;  // the README's table: every float quantity of the caching runs
}

#define REQUIRE_CACHE_FIXTURES()                                                                 \
  do {                                                                                           \
    if (test::fixture_dir(kSet).empty()) GTEST_SKIP() << "wan21-cache-tiny fixtures not found"; \
  } while (0)

}  // namespace

TEST(StepCache, SpecsParseAndPrintCanonically) {
  EXPECT_EQ(cache_spec_text(parse_cache_spec("teacache", "t")), "teacache:0.2");
  EXPECT_EQ(cache_spec_text(parse_cache_spec("teacache:0.08,ret_steps", "t")), "teacache:0.08,ret_steps");
  EXPECT_EQ(cache_spec_text(parse_cache_spec("magcache", "t")), "magcache:0.12,k=2,retention=0.2");
  EXPECT_EQ(cache_spec_text(parse_cache_spec("magcache:0.2,k=3", "t")), "magcache:0.2,k=3,retention=0.2");
  EXPECT_EQ(cache_spec_text(parse_cache_spec("easycache", "t")), "easycache:0.05");
  EXPECT_EQ(cache_spec_text(parse_cache_spec("none", "t")), "");
  for (const char* bad : {"tea", "teacache:x", "teacache:0.1,k=2", "magcache:0.1,k=0", "magcache:0.1,retention=2", "easycache,ret_steps",
                          "teacache:nan"})
    EXPECT_THROW(parse_cache_spec(bad, "t"), Error) << bad;
}

// The reference runs, call by call: the same calls computed, the same
// accumulated indicator where it was compared, the same transformer
// outputs, latents and video.
TEST(StepCache, EveryMethodReproducesItsReferenceRun) {
  REQUIRE_CACHE_FIXTURES();
  const ModelManifest m = load_manifest(test::fixture_manifest_path());
  const WanGenerator g(m, at::kCPU, at::kFloat);
  const std::optional<CacheConstants> constants = cache_constants(cache_constants_name(m));
  ASSERT_TRUE(constants.has_value());
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.file);
    auto io = test::load_tensors(test::fixture(c.file, kSet));
    const int64_t steps = io["timesteps"].size(0);
    const std::unique_ptr<StepCache> cache = StepCache::create(parse_cache_spec(c.spec, "test"), &*constants, steps);
    std::vector<at::Tensor> outs, latents;
    const at::Tensor latent = g.sample(io["noise"], io["context_cond"], io["context_uncond"], SamplerKind::UniPC, steps, 5.0,
                                       Guidance(5.0), [&](const WanGenerator::Step& s) {
                                         outs.push_back(at::stack({s.cond, s.uncond}));
                                         latents.push_back(s.latent);
                                       },
                                       {}, cache.get());
    ASSERT_EQ(static_cast<int64_t>(cache->calls().size()), 2 * steps);
    const at::Tensor computed = io["computed"].to(at::kLong), valid = io["indicator_valid"].to(at::kLong);
    const at::Tensor indicator = io["indicator"].to(at::kDouble);
    std::string got_pattern, want_pattern;
    double worst_indicator = 0;
    for (int64_t cnt = 0; cnt < 2 * steps; ++cnt) {
      const StepCache::Call& call = cache->calls()[static_cast<size_t>(cnt)];
      got_pattern += call.computed ? 'C' : '.';
      want_pattern += computed[cnt / 2][cnt % 2].item<int64_t>() ? 'C' : '.';
      EXPECT_EQ(call.compared, valid[cnt / 2][cnt % 2].item<int64_t>() != 0) << "call " << cnt;
      if (call.compared) {
        const double ref = indicator[cnt / 2][cnt % 2].item<double>();
        worst_indicator = std::max(worst_indicator, std::abs(call.indicator - ref) / std::max(1e-12, std::abs(ref)));
      }
    }
    EXPECT_EQ(got_pattern, want_pattern);
    EXPECT_LE(worst_indicator, tol(c.file, "indicator"));
    EXPECT_LE(test::rel_error(at::stack(outs), io["dit_out"]), tol(c.file, "dit_out"));
    EXPECT_LE(test::rel_error(at::stack(latents), io["latents"]), tol(c.file, "latents"));
    EXPECT_LE(test::rel_error(g.decode(latent, 0), io["video"]), tol(c.file, "video"));
    std::printf("[ parity ] %-28s %s  indicator rel %.2e, dit_out rel %.2e\n", c.file, got_pattern.c_str(), worst_indicator,
                test::rel_error(at::stack(outs), io["dit_out"]));
  }
}

// Models without reference constants refuse TeaCache and MagCache (EasyCache
// needs none); a manifest may name a set.
TEST(StepCache, ModelsWithoutConstantsRefuseTeaCacheAndMagCache) {
  REQUIRE_CACHE_FIXTURES();
  const ModelManifest tiny = load_manifest(test::fixture_manifest_path());
  ModelManifest bare = tiny;
  bare.cache_constants.clear();
  for (const char* method : {"teacache", "magcache"}) {
    GenerationRequest r;
    r.prompt = "a red circle";
    r.cache = method;
    EXPECT_NO_THROW(resolve_request(r, tiny));
    EXPECT_THROW(resolve_request(r, bare), Error) << method;
  }
  GenerationRequest r;
  r.prompt = "a red circle";
  r.cache = "easycache";
  EXPECT_EQ(resolve_request(r, bare).cache, "easycache:0.05");
}

// Through the command line: the frames of the MagCache run (the method whose
// two branches decide apart), its passes reported in --json and its spec
// recorded for --from.
TEST(StepCache, CliReproducesTheMagCacheRun) {
  REQUIRE_CACHE_FIXTURES();
  test::TempDir dir;
  const auto r = test::kino_cli("generate " + test::shell_quote("a large red circle moving to the right on a black background") +
                                " --model " + test::shell_quote(test::fixture_manifest_path()) +
                                " --seed 42 --steps 24 --cache magcache --json -o " + test::shell_quote(dir / "out_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["transformer_passes"], 48);
  EXPECT_EQ(record["reused_passes"], 25);
  EXPECT_EQ(record["settings"]["cache"], "magcache:0.12,k=2,retention=0.2");
  const at::Tensor ref =
      ((test::load_tensors(test::fixture("magcache_io.safetensors", kSet))["video"] + 1) / 2).clamp(0, 1).mul(255).permute({1, 2, 3, 0});
  for (int64_t f = 0; f < 9; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "out_%04d.png", static_cast<int>(f));
    std::vector<uint8_t> px = test::read_png_rgb(dir / name);
    ASSERT_EQ(px.size(), 48u * 64u * 3u) << name;
    const at::Tensor got = at::from_blob(px.data(), {48, 64, 3}, at::kByte).to(at::kFloat);
    EXPECT_LE((got - ref[f]).abs().max().item<double>(), 1.0) << name;
  }
}

// A two-expert model: the cache is emptied at the expert switch, so the
// low-noise expert's first step is computed however loose the threshold
// (MagCache with its 1.3B table, K 1000, no retention: everything else after
// the first step is reused).
TEST(StepCache, TwoExpertModelsComputeTheFirstStepAfterTheSwitch) {
  REQUIRE_CACHE_FIXTURES();
  if (test::fixture_dir("wan22-tiny").empty()) GTEST_SKIP() << "wan22-tiny fixtures not found";
  const ModelManifest m = load_manifest(std::string(KINO_TEST_DATA_DIR) + "/wan22-moe-tiny.kino.json");
  const WanGenerator g(m, at::kCPU, at::kFloat);
  const auto io = test::load_tensors(test::fixture("moe_e2e_io.safetensors", "wan22-tiny"));
  const std::optional<CacheConstants> constants = cache_constants("wan2.1-t2v-1.3b");
  const int64_t steps = 12;
  const std::unique_ptr<StepCache> cache = StepCache::create(parse_cache_spec("magcache:1000,k=1000,retention=0", "test"), &*constants, steps);
  std::vector<bool> low, computed;
  g.sample(io.at("noise"), io.at("context_cond"), io.at("context_uncond"), SamplerKind::UniPC, steps, 12.0, Guidance(4.0, 3.0),
           [&](const WanGenerator::Step& s) {
             low.push_back(s.low_noise_expert);
             computed.push_back(s.cond_computed && s.uncond_computed);
           },
           {}, cache.get());
  int switches = 0, reused = 0;
  for (size_t i = 1; i < low.size(); ++i) {
    reused += computed[i] ? 0 : 1;
    if (low[i] != low[i - 1]) {
      ++switches;
      EXPECT_TRUE(computed[i]) << "step " << i << " ran the other expert on a reused residual";
    }
  }
  EXPECT_EQ(switches, 1);
  EXPECT_GT(reused, 5);
}
