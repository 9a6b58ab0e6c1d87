// LoRA adapters against ../shared/fixtures/wan-lora-tiny: every file format
// merged into the tiny DiTs as the reference merges it (every changed tensor
// within the fixture's tolerance, every other one untouched), the keys that
// match nothing listed exactly, a LoRA for another model refused, a stack in
// order, one LoRA per Wan2.2 expert, and the official end-to-end videos
// through the CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "adapters/lora_merge.h"
#include "adapters/lora_plan.h"
#include "kino/error.h"
#include "kino/manifest.h"
#include "loading/layouts.h"
#include "nn/tensors.h"
#include "support.h"

using namespace kino;

namespace {

const std::string kSet = "wan-lora-tiny";

const nlohmann::json& fixture_manifest() {
  static const nlohmann::json m = nlohmann::json::parse(test::read_file(test::fixture("MANIFEST.json", kSet)));
  return m;
}
std::string lora_file(const std::string& name) { return test::fixture("loras/" + name + ".safetensors", kSet); }
std::string model_manifest(const std::string& name) { return std::string(KINO_TEST_DATA_DIR) + "/" + name + ".kino.json"; }

// The tensors of `component` as the model loads them with its LoRAs.
std::map<std::string, at::Tensor> loaded(const ModelManifest& m, const std::string& component) {
  const WeightIndex& index = *m.weight_index.at(component);
  Weights w(index);
  w.set_patch(lora_patch(m, component), lora_targets(m, component));
  std::map<std::string, at::Tensor> out;
  for (const auto& [official, stored] : index.names) out[official] = w.take(official);
  return out;
}

// Every tensor of `got` against the base weights and the expected merged
// tensors named `prefix<key>`: the changed ones within the fixture's
// tolerance, the rest exactly the base.
void expect_merged(const std::map<std::string, at::Tensor>& got, const std::string& base_file, const std::string& prefix,
                   const nlohmann::json& expected) {
  static const auto merged = test::load_tensors(test::fixture("expected_merged.safetensors", kSet));
  const double tol = fixture_manifest()["tolerances"]["merged_weights"]["rel_tol"];
  const auto base = test::load_tensors(base_file);
  std::set<std::string> changed;
  for (const auto& c : expected["changed"]) changed.insert(c.get<std::string>());
  ASSERT_EQ(got.size(), base.size());
  double worst = 0;
  for (const auto& [name, t] : got) {
    if (!changed.count(name)) {
      EXPECT_TRUE(at::equal(t, base.at(name))) << prefix << name << " changed";
      continue;
    }
    const double err = test::rel_error(t, merged.at(prefix + name));
    EXPECT_LE(err, tol) << prefix << name;
    worst = std::max(worst, err);
  }
  if (!changed.empty())
    std::printf("[ parity ] lora %-34s %2zu tensors, worst rel %.3e (tol %.0e)\n", prefix.c_str(), changed.size(), worst, tol);
}

}  // namespace

// Every LoRA file of the fixture at strengths 1 and 0.6 on the model it was
// made for: the merged tensors and the unmatched keys, exactly as listed.
TEST(Lora, EveryFormatMergesAsTheReference) {
  KINO_REQUIRE_FIXTURES();
  size_t cases = 0;
  for (const auto& [name, expected] : fixture_manifest()["expected"].items()) {
    if (name == "stack") continue;
    SCOPED_TRACE(name);
    const std::string lora = expected["lora"], model = expected["model"];
    const bool wan22 = model.rfind("wan22-tiny/", 0) == 0;
    const bool low = model.find("low_noise") != std::string::npos;
    ModelManifest m = load_manifest(model_manifest(wan22 ? "wan22-moe-tiny" : "wan21-tiny"));
    const std::string expert = wan22 ? (low ? "low_noise" : "high_noise") : "";
    add_loras(m, {LoraSpec{lora_file(lora), expected["strength"].get<double>(), expert}});
    ASSERT_EQ(m.loras.size(), 1u);
    const std::string component = low ? "transformer_low_noise" : "transformer";
    EXPECT_EQ(m.loras[0]->component, component);
    std::vector<std::string> unmatched;
    for (const auto& k : expected["unmatched_lora_keys"]) unmatched.push_back(k);
    EXPECT_EQ(m.loras[0]->unmatched, unmatched);
    const std::string strength = name.substr(name.rfind(".s") + 1);
    expect_merged(loaded(m, component), test::fixture_dir(model.substr(0, model.find('/'))) + model.substr(model.find('/')),
                  lora + "." + strength + ".", expected);
    // The other expert is untouched.
    if (wan22) expect_merged(loaded(m, low ? "transformer" : "transformer_low_noise"),
                             test::fixture(low ? "moe_high_noise_model_weights.safetensors" : "moe_low_noise_model_weights.safetensors",
                                           "wan22-tiny"),
                             "-", {{"changed", nlohmann::json::array()}});
    ++cases;
  }
  EXPECT_EQ(cases, 27u);
}

// Two LoRAs one after the other, each with its strength.
TEST(Lora, AStackAppliesInOrder) {
  KINO_REQUIRE_FIXTURES();
  const nlohmann::json& expected = fixture_manifest()["expected"]["stack"];
  ModelManifest m = load_manifest(model_manifest("wan21-tiny"));
  std::vector<LoraSpec> specs;
  for (const auto& l : expected["loras"]) specs.push_back({lora_file(l["lora"]), l["strength"].get<double>(), ""});
  add_loras(m, specs);
  expect_merged(loaded(m, "transformer"), test::fixture("dit_weights.safetensors"), "stack.", expected);
}

// A LoRA for a model of another width is refused before anything is merged,
// naming the file, the key and the parameter; an expert LoRA needs experts.
TEST(Lora, ALoraForAnotherModelIsRefused) {
  KINO_REQUIRE_FIXTURES();
  ModelManifest m = load_manifest(model_manifest("wan21-tiny"));
  const nlohmann::json& refused = fixture_manifest()["refused"];
  try {
    add_loras(m, {LoraSpec{lora_file(refused["lora"]), 1.0, ""}});
    ADD_FAILURE() << "a dim-96 LoRA was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("w_wrong_shape_dim96.safetensors"), std::string::npos) << msg;
    const std::string reference = refused["error"];  // "<param>: lora [96, 4] x [4, 96] vs [64, 64]"
    EXPECT_NE(msg.find(reference.substr(0, reference.find(':'))), std::string::npos) << msg;
    EXPECT_NE(msg.find("lora [96, 4] x [4, 96]"), std::string::npos) << msg;
  }
  EXPECT_TRUE(m.loras.empty());
  EXPECT_THROW(add_loras(m, {LoraSpec{lora_file("a_official_lora_down_up"), 1.0, "low_noise"}}), Error);
  EXPECT_THROW(add_loras(m, {LoraSpec{test::fixture_dir(kSet) + "/loras", 1.0, ""}}), Error);  // a folder
}

TEST(Lora, StrengthSuffixIsANumberOrPartOfTheName) {
  EXPECT_EQ(parse_lora_spec("a.safetensors:0.8").strength, 0.8);
  EXPECT_EQ(parse_lora_spec("a.safetensors:0.8").path, "a.safetensors");
  EXPECT_EQ(parse_lora_spec("a.safetensors:-1e-1").strength, -0.1);
  EXPECT_EQ(parse_lora_spec("C:lora.safetensors").path, "C:lora.safetensors");
  EXPECT_EQ(parse_lora_spec("C:lora.safetensors").strength, 1.0);
  EXPECT_EQ(parse_lora_spec("x:nan").path, "x:nan");
  EXPECT_EQ(parse_lora_spec("b.safetensors", "low_noise").expert, "low_noise");
}

namespace {

// The CLI's frames against a stored official video [3, F, H, W], within 1/255.
void expect_frames(const std::string& args, const at::Tensor& video) {
  test::TempDir dir;
  const auto r = test::kino_cli("generate " + test::shell_quote(fixture_manifest()["e2e"]["wan21"]["case"]["prompt"].get<std::string>()) +
                                " " + args + " --threads 1 -o " + test::shell_quote(dir / "f_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const at::Tensor ref = video_to_uint8(video).to(at::kInt);  // [F, H, W, 3]
  for (int64_t f = 0; f < ref.size(0); ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "f_%04d.png", static_cast<int>(f));
    const Image got = read_image(dir / name);
    ASSERT_EQ(got.width * got.height, ref.size(1) * ref.size(2));
    const at::Tensor g = at::from_blob(const_cast<uint8_t*>(got.rgb.data()), {ref.size(1), ref.size(2), 3}, at::kByte).to(at::kInt);
    EXPECT_LE((g - ref[f]).abs().max().item<int>(), 1) << "frame " << f;
  }
}

}  // namespace

// The official Wan2.1 run with the stack merged, and Wan2.2 A14B with one
// LoRA per expert (and with the high-noise one alone), through the CLI.
TEST(Lora, CliReproducesTheOfficialVideosWithLoras) {
  KINO_REQUIRE_FIXTURES();
  const auto e2e = test::load_tensors(test::fixture("e2e_lora.safetensors", kSet));
  const nlohmann::json& run = fixture_manifest()["e2e"];
  std::string stack;
  for (const auto& l : run["wan21"]["loras"])
    stack += " --lora " + test::shell_quote(lora_file(l["lora"]) + ":" + std::to_string(l["strength"].get<double>()));
  expect_frames("--model " + test::shell_quote(model_manifest("wan21-tiny")) + stack + " --seed 42 --size 64x48 --frames 9 --steps 4",
                e2e.at("wan21.stack.video"));
  const nlohmann::json& experts = run["wan22"]["loras"];
  const std::string high = " --lora-high-noise " + test::shell_quote(lora_file(experts["high_noise_model"]["lora"]) + ":" +
                                                                    std::to_string(experts["high_noise_model"]["strength"].get<double>()));
  const std::string low = " --lora-low-noise " + test::shell_quote(lora_file(experts["low_noise_model"]["lora"]) + ":" +
                                                                  std::to_string(experts["low_noise_model"]["strength"].get<double>()));
  const std::string wan22 = "--model " + test::shell_quote(model_manifest("wan22-moe-tiny")) + " --seed 1234 --size 64x48 --frames 9";
  expect_frames(wan22 + high + low, e2e.at("wan22.video"));
  expect_frames(wan22 + high, e2e.at("wan22.high_lora_only.video"));
}

// The LoRAs used go into the video's settings (file name, sha256,
// strength); --from names those the new run lacks.
TEST(Lora, AVideoRecordsItsLoras) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  const std::string lora = lora_file("a_official_lora_down_up");
  auto r = test::kino_cli("generate x --model " + test::shell_quote(model_manifest("wan21-tiny")) + " --lora " +
                          test::shell_quote(lora + ":0.5") + " --json -o " + test::shell_quote(dir / "a.mp4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json record = nlohmann::json::parse(r.out);
  const nlohmann::json& loras = record["settings"]["loras"];
  ASSERT_EQ(loras.size(), 1u);
  EXPECT_EQ(loras[0]["file"], "a_official_lora_down_up.safetensors");
  EXPECT_EQ(loras[0]["sha256"], fixture_manifest()["loras"]["a_official_lora_down_up"]["sha256"]);
  EXPECT_EQ(loras[0]["strength"], 0.5);
  auto again = test::kino_cli("generate --from " + test::shell_quote(dir / "a.mp4") + " --model " +
                              test::shell_quote(model_manifest("wan21-tiny")) + " -o " + test::shell_quote(dir / "b.mp4"));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("a_official_lora_down_up.safetensors"), std::string::npos) << again.err;
  auto same = test::kino_cli("generate --from " + test::shell_quote(dir / "a.mp4") + " --model " +
                             test::shell_quote(model_manifest("wan21-tiny")) + " --lora " + test::shell_quote(lora + ":0.5") + " -o " +
                             test::shell_quote(dir / "c.mp4"));
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(same.err.find("without"), std::string::npos) << same.err;
}

// A manifest's "loras" (relative to it, objects or "file:strength") are the
// same stack as the command line's; `kino model` shows them and its --json
// keeps them.
TEST(Lora, AManifestListsItsLoras) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  nlohmann::json j = nlohmann::json::parse(test::read_file(model_manifest("wan21-tiny")));
  const std::filesystem::path base = std::filesystem::path(model_manifest("wan21-tiny")).parent_path();
  for (const char* key : {"text_encoder", "transformer", "vae"})
    j[key]["weights"] = std::filesystem::absolute(base / j[key]["weights"].get<std::string>()).lexically_normal().string();
  j["tokenizer"] = std::filesystem::absolute(base / j["tokenizer"].get<std::string>()).lexically_normal().string();
  std::filesystem::create_directory(dir / "loras");
  std::filesystem::copy_file(lora_file("a_official_lora_down_up"), dir / "loras/a.safetensors");
  std::filesystem::copy_file(lora_file("f_lightx2v_style"), dir / "loras/f.safetensors");
  j["loras"] = {{{"file", "loras/a.safetensors"}, {"strength", 0.8}}, "loras/f.safetensors:0.5"};
  std::ofstream(dir / "kino.json") << j.dump();
  const ModelManifest m = load_manifest(dir.path);
  ASSERT_EQ(m.lora_specs.size(), 2u);
  EXPECT_EQ(m.lora_specs[1].strength, 0.5);
  expect_merged(loaded(m, "transformer"), test::fixture("dit_weights.safetensors"), "stack.", fixture_manifest()["expected"]["stack"]);
  const auto shown = test::kino_cli("model " + test::shell_quote(dir.path));
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("a.safetensors at 0.8 on the transformer: 20 tensors patched"), std::string::npos) << shown.out;
  const auto json = test::kino_cli("model " + test::shell_quote(dir.path) + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["loras"].size(), 2u);
  j["loras"] = {{{"file", "loras/a.safetensors"}, {"strength", "high"}}};
  std::ofstream(dir / "kino.json") << j.dump();
  EXPECT_THROW(load_manifest(dir.path), Error);
}

// A user preset can bring LoRAs (files in its own folder): the distill recipe
// as one preset. Its LoRAs merge when the model loads, so a batch item
// cannot switch to such a preset; a preset naming a file outside its folder
// is refused.
TEST(Lora, APresetBringsItsLoras) {
  KINO_REQUIRE_FIXTURES();
  test::TempDir dir;
  std::filesystem::create_directory(dir / "presets");
  std::filesystem::copy_file(lora_file("a_official_lora_down_up"), dir / "presets/distill.safetensors");
  std::ofstream(dir / "presets/my-distill.json")
      << R"({"name": "my-distill", "loras": ["distill.safetensors:0.8"], "settings": {"sampler": "distill", "steps": 4, "cfg": 1.0}})";
  const std::string env = "KINO_PRESETS=" + test::shell_quote(dir / "presets") + " ";
  const std::string model = " --model " + test::shell_quote(model_manifest("wan21-tiny"));
  auto r = test::run_command(env + KINO_BINARY + " generate x" + model + " --preset my-distill --json -o " + test::shell_quote(dir / "a.mp4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("distill.safetensors at 0.8 on the transformer: 20 tensors patched"), std::string::npos) << r.err;
  const nlohmann::json record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["settings"]["sampler"], "distill");
  EXPECT_EQ(record["settings"]["loras"][0]["strength"], 0.8);

  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "x", "preset": "my-distill"})" << "\n";
  auto batch = test::run_command(env + KINO_BINARY + " batch " + test::shell_quote(dir / "prompts.jsonl") + model + " --output-dir " +
                                 test::shell_quote(dir / "out"));
  EXPECT_EQ(batch.exit_code, 1);
  EXPECT_NE(batch.err.find("brings LoRAs"), std::string::npos) << batch.err;

  std::ofstream(dir / "presets/outside.json") << R"({"name": "outside", "loras": ["../elsewhere.safetensors"]})";
  auto bad = test::run_command(env + KINO_BINARY + " presets");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("must be a file name relative to the folder"), std::string::npos) << bad.err;
}
