// The generation settings' one table and one precedence rule: every key a
// batch line takes, a storyboard shot and a preset take too, with the same
// types; ranges are the same in a manifest's defaults and in a request
// (4097 frames: accepted by both, 4098 by neither); a batch item or shot
// takes its own settings over the command line's over its preset's, and
// its seed counts on from the command line's.
#include <gtest/gtest.h>

#include <sstream>

#include "kino/error.h"
#include "kino/presets.h"
#include "kino/prompt_file.h"
#include "kino/manifest.h"
#include "kino/runner.h"
#include "pipeline/resolve.h"
#include "request/settings.h"

namespace kino {
namespace {

ModelManifest named_model(const std::string& name) {
  ModelManifest m;
  m.name = name;
  return m;
}

// A valid JSON value for every setting of the table.
nlohmann::json sample_value(const Setting& s) {
  const std::string key = s.key;
  if (key == "sampler") return "euler";
  if (key == "aspect") return "16:9";
  switch (s.type) {
    case SettingType::Text: return "some text";
    case SettingType::Path: return key + ".png";
    case SettingType::PathList: return nlohmann::json::array({key + "0.png", key + "1.png"});
    case SettingType::Size: return "64x48";
    case SettingType::Seed: return 18446744073709551615ull;  // every uint64 seed is a seed
    case SettingType::Integer: return static_cast<int64_t>(s.hi);
    case SettingType::Number: return s.hi;
  }
  return nullptr;
}

TEST(Settings, ShotsLinesAndPresetsTakeEveryKeyOfTheTable) {
  for (const Setting& s : settings_table()) {
    nlohmann::json item = {{"prompt", "a red circle"}};
    item[s.key] = sample_value(s);
    std::istringstream line(item.dump() + "\n");
    const auto items = parse_prompt_file(line, "p.jsonl");
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].error, "") << s.key;
    const Storyboard board = parse_storyboard(nlohmann::json({{"shots", {item}}}).dump(), "b.json");
    ASSERT_EQ(board.shots.size(), 1u);
    // Both read the key into the same request.
    GenerationRequest a = items[0].request, b = board.shots[0].request;
    EXPECT_EQ(a.width, b.width) << s.key;
    EXPECT_EQ(a.frames, b.frames) << s.key;
    EXPECT_EQ(a.seconds, b.seconds) << s.key;
    EXPECT_EQ(a.aspect, b.aspect) << s.key;
    EXPECT_EQ(a.seed, b.seed) << s.key;
    EXPECT_EQ(a.image, b.image) << s.key;
    EXPECT_EQ(a.references, b.references) << s.key;
    // Presets add settings, not prompts, nor files.
    const bool names_files = s.type == SettingType::Path || s.type == SettingType::PathList;
    if ((s.type != SettingType::Text && !names_files) || std::string(s.key) == "sampler") {
      nlohmann::json preset = {{"name", "p"}, {"settings", {{s.key, sample_value(s)}}}};
      EXPECT_NO_THROW(parse_preset(preset, "p.json")) << s.key;
    }
    // A wrong type is refused alike, naming the field.
    if (s.type != SettingType::Text && s.type != SettingType::Size && !names_files) {
      item[s.key] = "seven";
      std::istringstream bad(item.dump() + "\n");
      const std::string line_error = parse_prompt_file(bad, "p.jsonl")[0].error;
      EXPECT_NE(line_error.find("field '" + std::string(s.key) + "'"), std::string::npos) << line_error;
      EXPECT_THROW(parse_storyboard(nlohmann::json({{"shots", {item}}}).dump(), "b.json"), Error) << s.key;
    }
  }
  // Items name their preset and (lines only) their output.
  std::istringstream line(R"({"prompt": "x", "preset": "anime", "output": "x.mp4"})");
  EXPECT_EQ(parse_prompt_file(line, "p")[0].preset, "anime");
  EXPECT_THROW(parse_storyboard(R"({"shots": [{"prompt": "x", "output": "x.mp4"}]})", "b.json"), Error);
}

TEST(Settings, RangesAreTheSameInDefaultsAndRequests) {
  ModelDescription wan;  // frames 4k+1, sizes in multiples of 16
  GenerationRequest r;
  r.prompt = "x";
  r.frames = 4097;
  r.seed = 1;
  EXPECT_EQ(resolve_request(r, GenerationDefaults{}, wan, true).frames, 4097);
  EXPECT_EQ(read_defaults({{"frames", 4097}}, "m.json defaults").frames, 4097);
  r.frames = 4098;
  try {
    resolve_request(r, GenerationDefaults{}, wan, false);
    ADD_FAILURE() << "4098 frames accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--frames must be in 1..4097, got 4098"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_defaults({{"frames", 4098}}, "m.json defaults"), Error);
  for (const Setting& s : settings_table()) {
    if (s.type != SettingType::Integer && s.type != SettingType::Number) continue;
    if (!s.defaults_key) continue;
    const double outside = s.hi + 1;
    EXPECT_THROW(read_defaults({{s.defaults_key, outside}}, "m.json defaults"), Error) << s.key;
    EXPECT_FALSE(in_range(s, outside)) << s.key;
    EXPECT_TRUE(in_range(s, s.hi)) << s.key;
  }
  EXPECT_THROW(read_defaults({{"stepz", 3}}, "m.json defaults"), Error) << "a misspelt default is named";
}

// Numbers that would overflow a size or frame count on their way there are
// refused with one line (no float-to-int overflow).
TEST(Settings, HugeAspectsAndFrameRatesAreRefusedBeforeTheyBecomeSizes) {
  ModelDescription wan;
  GenerationRequest r;
  r.prompt = "x";
  r.seed = 1;
  for (const char* aspect : {"1e300:1", "1:1e300", "17:1"}) {
    r.aspect = aspect;
    EXPECT_THROW(resolve_request(r, GenerationDefaults{}, wan, false), Error) << aspect;
  }
  r.aspect = "16:1";
  EXPECT_NO_THROW(resolve_request(r, GenerationDefaults{}, wan, false));
  r.aspect.reset();
  r.seconds = 10;
  r.fps = 1e300;
  EXPECT_THROW(resolve_request(r, GenerationDefaults{}, wan, false), Error);
}

TEST(Settings, AVideosRecordReadsBackAsTheSameSettings) {
  GenerationRequest r;
  r.prompt = "a red circle";
  r.negative = "blurry";
  r.seed = 18446744073709551615ull;
  r.steps = 7;
  r.cfg = 3.5;
  r.shift = 2.5;
  r.sampler = "dpm++";
  r.width = 96;
  r.height = 64;
  r.frames = 9;
  r.fps = 12;
  const GenerationSettings s = resolve_request(r, GenerationDefaults{}, ModelDescription{}, true);
  const GenerationSettings back = resolve_request(request_from_settings(settings_json(s, named_model("m"))), GenerationDefaults{},
                                                  ModelDescription{}, true);
  EXPECT_EQ(settings_record(back), settings_record(s));
  EXPECT_EQ(back.seed, 18446744073709551615ull);
}

TEST(Settings, ItemsTakeTheirOwnOverTheCommandLineOverTheirPreset) {
  const std::map<std::string, Preset> presets = {
      {"slow", parse_preset({{"name", "slow"}, {"prompt_suffix", ", slowly"}, {"settings", {{"steps", 40}, {"cfg", 9.0}, {"fps", 4.0}}}}, "built-in")},
      {"fast", parse_preset({{"name", "fast"}, {"settings", {{"steps", 2}, {"fps", 30.0}}}}, "built-in")}};
  GenerationRequest command_line;
  command_line.seed = 5;
  command_line.cfg = 2;
  command_line.frames = 9;
  GenerationRequest item;
  item.prompt = "a red circle";
  item.frames = 17;

  // The item's frames, the command line's cfg, the preset's steps and fps;
  // the seed counts on from the command line's.
  GenerationRequest r = layered_request(item, "", command_line, "slow", presets, 2);
  EXPECT_EQ(r.prompt, "a red circle, slowly");
  EXPECT_EQ(r.frames, 17);
  EXPECT_EQ(r.cfg, 2);
  EXPECT_EQ(r.steps, 40);
  EXPECT_EQ(r.fps, 4);
  EXPECT_EQ(r.seed, 7u);
  // The item's own preset over the command line's; its own seed over all.
  item.seed = 100;
  r = layered_request(item, "fast", command_line, "slow", presets, 2);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(r.fps, 30);
  EXPECT_EQ(r.seed, 100u);
  // Without a command-line seed, item k takes seed k.
  item.seed.reset();
  EXPECT_EQ(layered_request(item, "", GenerationRequest{}, "", presets, 3).seed, 3u);
}

}  // namespace
}  // namespace kino

namespace kino {

// Files named inside JSON files: prompt-file lines and storyboard shots name
// them relative to their own folder, never absolute, above it or as a URL;
// presets and a video's settings cannot name files at all.
TEST(Settings, FilesNamedByFilesStayInTheirFolder) {
  std::istringstream ok(R"({"prompt": "x", "image": "frames/in.png", "last_image": "./end.png"})");
  const auto items = parse_prompt_file(ok, "/data/batch/prompts.jsonl");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(*items[0].request.image, "/data/batch/frames/in.png");
  EXPECT_EQ(*items[0].request.last_image, "/data/batch/end.png");
  for (const char* bad : {"/etc/passwd", "../secret.png", "frames/../../x.png", "http://host/x.png", ""}) {
    std::istringstream line(std::string(R"({"prompt": "x", "image": ")") + bad + "\"}");
    const std::string error = parse_prompt_file(line, "/data/batch/prompts.jsonl")[0].error;  // the line fails alone
    EXPECT_NE(error.find("field 'image' must be a file name relative to the folder"), std::string::npos) << bad << ": " << error;
  }
  const Storyboard board = parse_storyboard(R"({"shots": [{"prompt": "a", "image": "key1.png"}]})", "boards/film.json");
  EXPECT_EQ(*board.shots[0].request.image, "boards/key1.png");
  EXPECT_THROW(parse_storyboard(R"({"shots": [{"prompt": "a", "image": "/tmp/key1.png"}]})", "boards/film.json"), Error);
  EXPECT_THROW(parse_preset(nlohmann::json{{"name", "p"}, {"settings", {{"image", "x.png"}}}}, "p.json"), Error);
  nlohmann::json recorded = {{"prompt", "x"}, {"image", "/home/someone/photo.png"}};
  EXPECT_FALSE(request_from_settings(recorded).image.has_value());
}

}  // namespace kino

namespace kino {

// Integers from files must fit the field: 4294967297 is not a manifest
// version (it was once read as 1).
TEST(Settings, IntegersMustFitTheirField) {
  try {
    parse_manifest(R"({"kino_manifest": 4294967297})", "m.json", false);
    ADD_FAILURE() << "4294967297 read as a version";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("field 'kino_manifest' must be an integer from -2147483648 to 2147483647"), std::string::npos)
        << e.what();
  }
}

}  // namespace kino

namespace kino {

// A prompt file saved with a UTF-8 byte-order mark reads as without one: a
// first JSON line is JSON, a first comment a comment.
TEST(Settings, APromptFilesByteOrderMarkIsNotText) {
  std::istringstream json("\xEF\xBB\xBF{\"prompt\": \"a red circle\", \"seed\": 3}\r\nsecond\r\n");
  const auto items = parse_prompt_file(json, "p.jsonl");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].error, "");
  EXPECT_EQ(items[0].request.prompt, "a red circle");
  EXPECT_EQ(items[0].request.seed, 3u);
  EXPECT_EQ(items[1].request.prompt, "second");
  std::istringstream comment("\xEF\xBB\xBF# a comment\nonly\n");
  const auto one = parse_prompt_file(comment, "p.txt");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].request.prompt, "only");
}

}  // namespace kino
