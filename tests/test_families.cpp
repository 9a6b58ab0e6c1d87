// What adding a model family touches: a second family ("stub-family", a
// generator of its own with its own frame and size rules) is one
// VideoModel and one register_model call; Pipeline, request resolution and
// the app layer run it unchanged. Unknown families and tasks are refused
// by the factory before anything loads.
#include <gtest/gtest.h>

#include <fstream>

#include "kino/error.h"
#include "kino/pipeline.h"
#include "pipeline/model_registry.h"
#include "support.h"

namespace kino {
namespace {

// One CPU thread, float32.
RuntimeOptions cpu_float32() {
  RuntimeOptions o;
  o.device = "cpu";
  o.dtype = "float32";
  o.threads = 1;
  return o;
}


// Noise squashed into the picture: [1, F, H, W] latents, three equal channels.
class StubModel final : public VideoModel {
 public:
  bool truncates(const std::string& text) const override { return text.size() > 16; }
  Conditioning encode(const GenerationSettings& s) const override {
    Conditioning c;
    c.tensors["length"] = at::tensor(static_cast<int64_t>(s.prompt.size()));
    return c;
  }
  std::vector<int64_t> latent_shape(const GenerationSettings& s) const override { return {1, s.frames, s.height, s.width}; }
  at::Tensor sample(const at::Tensor& noise, const Conditioning& c, const GenerationSettings& s,
                    const std::function<void(const StepDone&)>& after_step) const override {
    EXPECT_TRUE(c.has("length"));
    for (int64_t i = 1; i <= s.steps; ++i) after_step({i, 1, 0});
    return noise.tanh();
  }
  at::Tensor decode(const at::Tensor& latent, int64_t) const override { return latent.repeat({3, 1, 1, 1}); }
};

ModelDescription describe_stub(const ModelManifest& m) {
  ModelDescription d;
  d.family = m.family;
  d.task = m.task;
  d.frame_multiple = 2;
  d.size_multiple = 8;
  d.text_len = 16;
  d.memory.dit_dim = 8;
  d.memory.dit_ffn = 8;
  d.memory.dit_heads = 1;
  d.memory.vae_dim = 1;
  return d;
}

void register_stub_once() {
  static const bool done = [] {
    register_model({"stub-family", "t2v", describe_stub,
                    [](const ModelManifest&, const LoadOptions&) { return std::make_unique<StubModel>(); }});
    return true;
  }();
  (void)done;
}

// A manifest of `family` whose component files are not read.
ModelManifest manifest_of(const test::TempDir& dir, const std::string& family, const std::string& task = "t2v") {
  std::ofstream(dir / "tokenizer.model") << "unused";
  const std::string text = R"({"kino_manifest": 1, "name": "stub", "family": ")" + family + R"(", "task": ")" + task +
                           R"(", "tokenizer": "tokenizer.model", "text_encoder": {"weights": "t.safetensors"},
      "transformer": {"weights": "d.safetensors"}, "vae": {"weights": "v.safetensors"},
      "defaults": {"steps": 3, "width": 24, "height": 16, "frames": 5, "fps": 8, "negative_prompt": ""}})";
  return parse_manifest(text, dir / "kino.json", /*weights_required=*/false);
}

TEST(Families, ASecondFamilyRunsThroughTheUnchangedPipelineWithItsOwnRules) {
  register_stub_once();
  test::TempDir dir;
  Pipeline p(manifest_of(dir, "stub-family"), cpu_float32());
  EXPECT_EQ(p.description().size_multiple, 8);

  GenerationRequest r;
  r.prompt = "a prompt longer than sixteen bytes";
  r.seed = 3;
  r.frames = 8;   // the stub's rule is 2k+1, not Wan's 4k+1
  r.width = 30;   // multiples of 8, not 16
  GenerationSettings s = p.resolve(r);
  EXPECT_EQ(s.frames, 9);
  EXPECT_EQ(s.width, 32);
  EXPECT_EQ(s.height, 16);
  EXPECT_EQ(s.steps, 3);
  ASSERT_EQ(s.warnings.size(), 3u);  // frames, width, and the prompt the stub's encoder would cut
  EXPECT_NE(s.warnings[2].find("16 tokens"), std::string::npos) << s.warnings[2];

  int64_t steps = 0;
  const Video a = p.generate(s, [&](const Progress& pr) {
    if (pr.stage == "denoise" && pr.step > 0) ++steps;
  });
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(a.frames, 9);
  EXPECT_EQ(a.width, 32);
  EXPECT_EQ(a.height, 16);
  EXPECT_EQ(a.rgb.size(), static_cast<size_t>(9 * 32 * 16 * 3));
  // The seed decides the noise, as for every family.
  EXPECT_EQ(p.generate(s).rgb, a.rgb);
  s.seed = 4;
  EXPECT_NE(p.generate(s).rgb, a.rgb);

  // The cancel hook stops it at the next boundary.
  p.set_cancel_hook([] { return true; });
  EXPECT_THROW(p.generate(s), Interrupted);
}

TEST(Families, UnknownFamiliesAndTasksAreRefusedBeforeLoadingWithTheKnownOnes) {
  register_stub_once();
  test::TempDir dir;
  for (const auto& [family, task] : {std::pair<std::string, std::string>{"nope", "t2v"}, {"wan2.1", "ti2v"}, {"stub-family", "i2v"}}) {
    try {
      Pipeline p(manifest_of(dir, family, task), cpu_float32());
      ADD_FAILURE() << family << " " << task << " was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("family '" + family + "' with task '" + task + "' is not supported"), std::string::npos) << msg;
      EXPECT_NE(msg.find("wan2.1 t2v"), std::string::npos) << msg;
      EXPECT_NE(msg.find("wan2.2 ti2v"), std::string::npos) << msg;
      EXPECT_NE(msg.find("stub-family t2v"), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(register_model({"stub-family", "t2v", describe_stub, nullptr}), Error) << "one entry per family and task";
}

}  // namespace
}  // namespace kino
