// kino in render pipelines, end to end through the binary on the embedded
// kino-tiny model: batches (broken lines, impossible sizes, interruption and
// resume, shards), --json, streaming to a pipe, provenance round trips,
// storyboards, audio, presets.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "support.h"

namespace fs = std::filesystem;
using kino::test::kino_cli;
using kino::test::shell_quote;
using Json = nlohmann::json;

namespace {

std::string model() {
  const char* env = std::getenv("KINO_TEST_MODEL");
  return env ? env : std::string(KINO_SOURCE_DIR) + "/models/kino-tiny";
}

// Fast settings for mechanics tests: 2 steps.
const std::string kFast = " --steps 2 --threads 1 ";

std::vector<Json> json_lines(const std::string& out) {
  std::vector<Json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(Json::parse(line));
  return v;
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

Json probe(const std::string& path) {
  auto r = kino::test::run_command("ffprobe -v error -count_frames -show_streams -show_format -of json " + shell_quote(path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out);
}

#define REQUIRE_MODEL()                                                                  \
  if (!fs::exists(model() + "/kino.json")) GTEST_SKIP() << "no model at " << model()

}  // namespace

TEST(Batch, BrokenLinesFailAloneInterruptionAndResumeGiveExactlyTheExpectedFiles) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  // 20 items: line 6 is broken JSON, item 11 asks for an impossible size.
  {
    std::ofstream f(dir / "prompts.jsonl");
    f << "# a comment, then a blank line\n\n";
    for (int i = 0; i < 20; ++i) {
      if (i == 4) f << "{\"prompt\": \"broken\n";
      else if (i == 10) f << R"({"prompt": "a huge red circle", "size": "0x0"})" << "\n";
      else f << Json({{"prompt", "a small blue square moving up on a gray background"}, {"seed", 100 + i}}).dump() << "\n";
    }
  }
  const std::string out = dir / "out";
  fs::create_directory(out);
  const std::string cmd = std::string(KINO_BINARY) + " batch " + shell_quote(dir / "prompts.jsonl") + " --model " +
                          shell_quote(model()) + " -d " + shell_quote(out) + " --name '{index}.mp4' --json" + kFast;

  // Start, wait for three finished videos, then Ctrl-C.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + shell_quote(dir / "run1.out") + " 2>" + shell_quote(dir / "run1.err")).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  auto finished = [&] {
    size_t n = 0;
    for (const auto& name : files_in(out)) n += name[0] != '.';
    return n;
  };
  while (finished() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  for (const auto& name : files_in(out)) EXPECT_NE(name[0], '.') << "temporary file left behind: " << name;
  const size_t after_interrupt = files_in(out).size();
  EXPECT_GE(after_interrupt, 3u);
  EXPECT_LT(after_interrupt, 18u);

  // Resume: the rest is rendered, finished items are skipped.
  auto r = kino::test::run_command(cmd + " --skip-existing");
  EXPECT_EQ(r.exit_code, 1) << "failed items must make the batch exit non-zero\n" << r.err;
  std::set<std::string> expected;
  for (int i = 0; i < 20; ++i)
    if (i != 4 && i != 10) {
      char name[16];
      std::snprintf(name, sizeof name, "%04d.mp4", i);
      expected.insert(name);
    }
  EXPECT_EQ(files_in(out), expected);
  const auto lines = json_lines(r.out);
  ASSERT_FALSE(lines.empty());
  const Json summary = lines.back().at("summary");
  EXPECT_EQ(summary["failed"], 2);
  EXPECT_EQ(summary["skipped"].get<size_t>(), after_interrupt);
  EXPECT_EQ(summary["done"].get<size_t>(), 18 - after_interrupt);
  EXPECT_EQ(summary["items"], 20);
  EXPECT_EQ(summary["failures"][0]["line"], 7);  // the broken line, named by its line number
  EXPECT_NE(summary["failures"][1]["error"].get<std::string>().find("--size"), std::string::npos);
  EXPECT_NE(r.err.find("prompts.jsonl:7"), std::string::npos) << r.err;
  // Every finished video carries its line's seed.
  EXPECT_EQ(Json::parse(probe(out + "/0007.mp4")["format"]["tags"]["kino_settings"].get<std::string>())["seed"], 107);
}

TEST(Batch, ShardsSplitTheFileAndPlainTextWorksFromStdin) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  std::ofstream(dir / "p.txt") << "a red circle\n# skipped\n\na green triangle\na white square\na cyan circle\n";
  auto r = kino::test::run_command("cat " + shell_quote(dir / "p.txt") + " | " + KINO_BINARY + " batch - --model " +
                                   shell_quote(model()) + " -d " + shell_quote(dir.path) + " --shard 2/2 --name '{index}-{slug}.mp4' --json" + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "0001-a-green-triangle.mp4"));
  EXPECT_TRUE(fs::exists(dir / "0003-a-cyan-circle.mp4"));
  EXPECT_FALSE(fs::exists(dir / "0000-a-red-circle.mp4"));
  EXPECT_EQ(json_lines(r.out).back()["summary"]["done"], 2);
}

TEST(Output, JsonRecordDescribesTheVideo) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  auto r = kino_cli("generate 'a large red circle moving to the right on a black background' --model " + shell_quote(model()) +
                    " --seed 5 --json -o " + shell_quote(dir / "v.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << "stdout must hold exactly the JSON record";
  const Json& j = lines[0];
  EXPECT_EQ(j["path"], dir / "v.mp4");
  EXPECT_EQ(j["seed"], 5);
  EXPECT_EQ(j["model"], "kino-tiny");
  EXPECT_EQ(j["settings"]["steps"], 2);
  for (const char* k : {"text_s", "denoise_s", "decode_s", "write_s", "total_s"}) EXPECT_GE(j["timings"][k].get<double>(), 0.0) << k;
  EXPECT_GT(j["peak_memory_mb"].get<double>(), 0.0);
}

TEST(Output, JsonProgressEventsOnStderr) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  auto r = kino_cli("-q generate 'a red circle' --model " + shell_quote(model()) + " --progress json -o " + shell_quote(dir / "v.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = json_lines(r.err);
  int steps = 0;
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const auto& e = events[i];
    EXPECT_EQ(e["event"], "progress");
    if (e["stage"] == "denoise" && e.contains("step") && e["step"].get<int>() > 0) ++steps;
  }
  EXPECT_EQ(steps, 2);
  // The last event says what was written.
  EXPECT_EQ(events.back()["event"], "done");
  EXPECT_EQ(events.back()["path"], dir / "v.mp4");
  EXPECT_EQ(events.back()["files"], Json::array({dir / "v.mp4"}));
}

TEST(Output, StreamsToAPipe) {
  REQUIRE_MODEL();
  auto r = kino::test::run_command(std::string(KINO_BINARY) + " -q generate 'a red circle' --model " + shell_quote(model()) + kFast +
                                   " -o - | ffprobe -v error -count_frames -show_streams -of json -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["streams"][0]["codec_name"], "h264");
  EXPECT_EQ(j["streams"][0]["nb_read_frames"], "17");
  auto y = kino::test::run_command(std::string(KINO_BINARY) + " -q generate 'a red circle' --model " + shell_quote(model()) + kFast +
                                   " -o - --format y4m | ffprobe -v error -count_frames -show_streams -of json -");
  ASSERT_EQ(y.exit_code, 0) << y.err;
  EXPECT_EQ(Json::parse(y.out)["streams"][0]["nb_read_frames"], "17");
}

TEST(Provenance, InfoRoundTripsEverySettingAndFromRegeneratesTheSameVideo) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  auto r = kino_cli("generate 'a small yellow triangle falling on a navy background' --model " + shell_quote(model()) +
                    " --negative 'blurry' --seed 77 --steps 3 --cfg 3.5 --shift 2.5 --sampler dpm++ --size 96x64 --frames 9 --fps 12"
                    " --threads 1 -o " + shell_quote(dir / "a.mp4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = kino_cli("info --json " + shell_quote(dir / "a.mp4"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const Json s = Json::parse(info.out);
  EXPECT_EQ(s["prompt"], "a small yellow triangle falling on a navy background");
  EXPECT_EQ(s["negative"], "blurry");
  EXPECT_EQ(s["seed"], 77);
  EXPECT_EQ(s["steps"], 3);
  EXPECT_EQ(s["cfg"], 3.5);
  EXPECT_EQ(s["shift"], 2.5);
  EXPECT_EQ(s["sampler"], "dpm++");
  EXPECT_EQ(s["width"], 96);
  EXPECT_EQ(s["height"], 64);
  EXPECT_EQ(s["frames"], 9);
  EXPECT_EQ(s["fps"], 12.0);
  EXPECT_EQ(s["model"], "kino-tiny");
  EXPECT_EQ(s["ai_generated"], true);
  // --from regenerates the same frames.
  r = kino_cli("generate --from " + shell_quote(dir / "a.mp4") + " --model " + shell_quote(model()) + " --threads 1 -o " + shell_quote(dir / "b.y4m"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = kino_cli("generate 'a small yellow triangle falling on a navy background' --model " + shell_quote(model()) +
               " --negative 'blurry' --seed 77 --steps 3 --cfg 3.5 --shift 2.5 --sampler dpm++ --size 96x64 --frames 9 --fps 12"
               " --threads 1 -o " + shell_quote(dir / "a.y4m"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(slurp(dir / "a.y4m"), slurp(dir / "b.y4m"));
}

TEST(Storyboard, ThreeShotsJoinWithCrossfade) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  // 17 + 9 + 17 frames, two crossfades of 0.25 s at 8 fps = 2 frames each.
  std::ofstream(dir / "board.json") << R"({"crossfade": 0.25, "shots": [
    {"prompt": "a red circle moving right on a black background", "seed": 1},
    {"prompt": "a red circle growing on a black background", "frames": 9},
    {"prompt": "ein grünes Dreieck fällt auf weißem Hintergrund", "seconds": 2, "preset": "cinematic"}]})";
  auto r = kino_cli("storyboard " + shell_quote(dir / "board.json") + " --model " + shell_quote(model()) + " --json -o " +
                    shell_quote(dir / "s.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out)[0]["frames"], 17 + 9 + 17 - 2 - 2);
  EXPECT_EQ(probe(dir / "s.mp4")["streams"][0]["nb_read_frames"], std::to_string(17 + 9 + 17 - 4));
}

// One precedence rule for shots and batch lines: the item's own settings
// over the command line's; --seed is the first item's seed and the others
// count on (a shot or line with a seed of its own keeps it).
TEST(Storyboard, SeedCountsOnFromTheCommandLineAndAShotsOwnSettingsWin) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  std::ofstream(dir / "board.json") << R"({"shots": [
    {"prompt": "a red circle moving right on a black background"},
    {"prompt": "a red circle growing on a black background", "steps": 1, "aspect": "1:1"},
    {"prompt": "a green square falling on a white background", "frames": 9}]})";
  auto r = kino_cli("storyboard " + shell_quote(dir / "board.json") + " --model " + shell_quote(model()) +
                    " --seed 5 --frames 5 -o " + shell_quote(dir / "s.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = kino_cli("info --json " + shell_quote(dir / "s.mp4"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const Json shots = Json::parse(info.out)["storyboard"]["shots"];
  ASSERT_EQ(shots.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(shots[i]["seed"], 5 + i) << "shot " << i + 1;
  EXPECT_EQ(shots[0]["steps"], 2);
  EXPECT_EQ(shots[1]["steps"], 1) << "the shot's own steps over the command line's";
  EXPECT_EQ(shots[0]["frames"], 5);
  EXPECT_EQ(shots[2]["frames"], 9) << "the shot's own frames over the command line's";
}

TEST(Batch, ALinesOwnSettingsWinAndSeedsCountOnFromTheCommandLine) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  std::ofstream(dir / "p.jsonl") << R"({"prompt": "a red circle", "steps": 1}
{"prompt": "a blue square", "seed": 42}
{"prompt": "a white triangle"}
)";
  auto r = kino_cli("batch " + shell_quote(dir / "p.jsonl") + " --model " + shell_quote(model()) + " -d " + shell_quote(dir.path) +
                    " --seed 10 --frames 5 --json" + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0]["settings"]["steps"], 1);
  EXPECT_EQ(lines[1]["settings"]["steps"], 2);
  EXPECT_EQ(lines[0]["seed"], 10);
  EXPECT_EQ(lines[1]["seed"], 42);
  EXPECT_EQ(lines[2]["seed"], 12);
}

TEST(Audio, TrackIsCutToTheVideoLength) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  auto gen = kino::test::run_command("ffmpeg -v error -f lavfi -i sine=frequency=440:duration=5 -ac 1 -ar 22050 " + shell_quote(dir / "tone.wav"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = kino_cli("generate 'a red circle' --model " + shell_quote(model()) + " --audio " + shell_quote(dir / "tone.wav") + " -o " +
                    shell_quote(dir / "v.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = probe(dir / "v.mp4");
  ASSERT_EQ(j["streams"].size(), 2u);
  const Json& audio = j["streams"][1];
  EXPECT_EQ(audio["codec_name"], "aac");
  EXPECT_EQ(audio["channels"], 2);
  // 17 frames at 8 fps = 2.125 s; AAC frames round it to 1024 samples.
  EXPECT_NEAR(std::stod(audio["duration"].get<std::string>()), 17.0 / 8.0, 0.03);
}

TEST(Presets, AreListedAndChangeThePromptTheEncoderSees) {
  REQUIRE_MODEL();
  auto list = kino_cli("presets --json");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::set<std::string> names;
  for (const auto& p : Json::parse(list.out)) names.insert(p["name"]);
  for (const char* n : {"cinematic", "film-noir", "anime", "papercraft", "documentary", "vintage-film"}) EXPECT_TRUE(names.count(n)) << n;

  kino::test::TempDir dir;
  fs::create_directory(dir / "presets");
  std::ofstream(dir / "presets/mine.json") << R"({"name": "mine", "description": "test", "prompt_prefix": "close-up: ", "negative": "text", "settings": {"cfg": 2.5}})";
  auto r = kino::test::run_command("KINO_PRESETS=" + shell_quote(dir / "presets") + " " + KINO_BINARY + " generate 'a red circle' --model " +
                                   shell_quote(model()) + " --preset film-noir --json -o " + shell_quote(dir / "a.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = json_lines(r.out)[0];
  EXPECT_EQ(j["prompt"], "a red circle, film noir, black and white, high contrast, hard shadows, 1940s");
  EXPECT_EQ(j["settings"]["cfg"], 6.0);
  r = kino::test::run_command("KINO_PRESETS=" + shell_quote(dir / "presets") + " " + KINO_BINARY + " generate 'a red circle' --model " +
                              shell_quote(model()) + " --preset mine --cfg 4 --json -o " + shell_quote(dir / "b.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json_lines(r.out)[0];
  EXPECT_EQ(j["prompt"], "close-up: a red circle");
  EXPECT_EQ(j["settings"]["negative"], "text");
  EXPECT_EQ(j["settings"]["cfg"], 4.0);  // the command line wins over the preset
}

TEST(Sizes, AspectAndSecondsPickValidValues) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  auto r = kino_cli("generate 'a red circle' --model " + shell_quote(model()) + " --aspect 16:9 --seconds 1 --json -o " +
                    shell_quote(dir / "a.mp4") + kFast);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json s = json_lines(r.out)[0]["settings"];
  EXPECT_EQ(s["width"].get<int>() % 16, 0);
  EXPECT_EQ(s["height"].get<int>() % 16, 0);
  EXPECT_GT(s["width"].get<int>(), s["height"].get<int>());
  EXPECT_EQ(s["frames"], 9);  // 1 s at 8 fps -> nearest 4k+1
}

// Two items that would write one file are refused before anything renders
// (the second would overwrite the first): the same "output" twice, a fixed
// --name, a line named like another item's generated name.
TEST(Batch, OutputNameCollisionsAreRefusedBeforeRendering) {
  REQUIRE_MODEL();
  kino::test::TempDir dir;
  struct Case {
    std::string lines, name;
  };
  const Case cases[] = {
      {R"({"prompt": "a red circle", "output": "a.mp4"})"
       "\n"
       R"({"prompt": "a blue square", "output": "a.mp4"})"
       "\n",
       "{index}.mp4"},
      {"a red circle\na blue square\n", "same.mp4"},
      {R"({"prompt": "a red circle"})"
       "\n"
       R"({"prompt": "a blue square", "output": "0000.mp4"})"
       "\n",
       "{index}.mp4"},
  };
  for (const Case& c : cases) {
    {
      std::ofstream f(dir / "prompts.jsonl");
      f << c.lines;
    }
    const std::string out = dir / "out";
    const auto r = kino::test::kino_cli("batch " + shell_quote(dir / "prompts.jsonl") + " --model " + shell_quote(model()) + " -d " +
                                        shell_quote(out) + " --name " + shell_quote(c.name) + kFast);
    EXPECT_EQ(r.exit_code, 1) << c.lines;
    EXPECT_NE(r.err.find("would both write"), std::string::npos) << r.err;
    EXPECT_EQ(kino::test::count_files(out), 0u) << c.lines;
    fs::remove_all(out);
  }
}
