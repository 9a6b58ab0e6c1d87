// The kino binary end to end: the fixture model's frames through the CLI,
// and bad input refused with one line, a non-zero exit and no output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loading/tensor_file.h"
#include "kino/video_writer.h"
#include "support.h"

namespace fs = std::filesystem;
using kino::test::count_files;
using kino::test::count_lines;
using kino::test::kino_cli;
using kino::test::shell_quote;

namespace {

const std::string& kManifest = kino::test::fixture_manifest_path();

}  // namespace

TEST(Cli, FixtureModelReproducesTheReferenceFrames) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  auto r = kino_cli("generate " + shell_quote("a large red circle moving to the right on a black background") +
                    " --model " + shell_quote(kManifest) + " --seed 42 -o " + shell_quote(dir / "out_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  at::Tensor ref = kino::test::load_tensors(kino::test::fixture("e2e_io.safetensors"))["unipc.video"];  // [3, 9, 48, 64]
  // The reference video in bytes, rounded the way kino writes frames.
  at::Tensor ref_bytes = ((ref + 1) / 2).clamp(0, 1).mul(255).permute({1, 2, 3, 0});
  ASSERT_EQ(count_files(dir.path), 9u);
  for (int64_t f = 0; f < 9; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "out_%04d.png", static_cast<int>(f));
    std::vector<uint8_t> px = kino::test::read_png_rgb(dir / name);
    ASSERT_EQ(px.size(), 48u * 64u * 3u) << name;
    at::Tensor got = at::from_blob(px.data(), {48, 64, 3}, at::kByte).to(at::kFloat);
    const double max_diff = (got - ref_bytes[f]).abs().max().item<double>();
    EXPECT_LE(max_diff, 1.0) << name << ": pixels differ by more than 1/255";
  }
}

// Wan2.2 TI2V image-to-video from the command line: the fixture's image as a
// PNG file gives the official frames (within 1/255), its size sets the
// video's; a model that cannot animate images refuses --image.
TEST(Cli, ImageToVideoReproducesTheReferenceFrames) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  auto io = kino::test::load_tensors(kino::test::fixture("ti2v_e2e_io.safetensors", "wan22-tiny"));
  const at::Tensor image = io["i2v.image_u8"].contiguous();  // [64, 96, 3]
  kino::write_png(dir / "first.png", image.data_ptr<uint8_t>(), 96, 64);
  const std::string ti2v = std::string(KINO_TEST_DATA_DIR) + "/wan22-ti2v-tiny.kino.json";
  auto r = kino_cli("generate " + shell_quote("a small blue square sliding down over a white background") + " --model " +
                    shell_quote(ti2v) + " --image " + shell_quote(dir / "first.png") + " --size 64x64 --seed 42 -o " +
                    shell_quote(dir / "out_%04d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("the output size follows the image: 96x64"), std::string::npos) << r.err;
  const at::Tensor ref_bytes = ((io["i2v.video"] + 1) / 2).clamp(0, 1).mul(255).permute({1, 2, 3, 0});
  ASSERT_EQ(count_files(dir.path), 10u);  // 9 frames and the image
  for (int64_t f = 0; f < 9; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "out_%04d.png", static_cast<int>(f));
    std::vector<uint8_t> px = kino::test::read_png_rgb(dir / name);
    ASSERT_EQ(px.size(), 64u * 96u * 3u) << name;
    const at::Tensor got = at::from_blob(px.data(), {64, 96, 3}, at::kByte).to(at::kFloat);
    EXPECT_LE((got - ref_bytes[f]).abs().max().item<double>(), 1.0) << name << ": pixels differ by more than 1/255";
  }

  r = kino_cli("generate 'a red circle' --model " + shell_quote(kManifest) + " --image " + shell_quote(dir / "first.png") +
               " -o " + shell_quote(dir / "no.mp4"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("does not animate images"), std::string::npos) << r.err;
  r = kino_cli("generate 'a red circle' --model " + shell_quote(ti2v) + " --image " + shell_quote(dir / "absent.png") +
               " -o " + shell_quote(dir / "no.mp4"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("absent.png"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "no.mp4"));
}

TEST(Cli, WritesAnMp4WithProvenance) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  auto r = kino_cli("generate 'a red circle' --model " + shell_quote(kManifest) + " --seed 7 --steps 2 -o " + shell_quote(dir / "v.mp4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto probe = kino::test::run_command("ffprobe -v error -show_streams -show_format -of json " + shell_quote(dir / "v.mp4"));
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  auto j = nlohmann::json::parse(probe.out);
  const auto& st = j["streams"][0];
  EXPECT_EQ(st["codec_name"], "h264");
  EXPECT_EQ(st["pix_fmt"], "yuv420p");
  EXPECT_EQ(st["width"], 64);
  EXPECT_EQ(st["height"], 48);
  EXPECT_EQ(st["nb_frames"], "9");
  EXPECT_EQ(st["r_frame_rate"], "16/1");
  const auto& tags = j["format"]["tags"];
  EXPECT_NE(tags["comment"].get<std::string>().find("AI-generated"), std::string::npos);
  auto settings = nlohmann::json::parse(tags["kino_settings"].get<std::string>());
  EXPECT_EQ(settings["prompt"], "a red circle");
  EXPECT_EQ(settings["seed"], 7);
  EXPECT_EQ(settings["steps"], 2);
  EXPECT_EQ(count_files(dir.path), 1u);  // no temporary file left behind
}

struct BadRun {
  const char* label;
  std::string args;      // after "generate 'p' --model M -o OUT"
  int exit_code;
  const char* message;   // part of the one-line error
};

void PrintTo(const BadRun& b, std::ostream* os) { *os << b.label; }

class CliRefuses : public ::testing::TestWithParam<BadRun> {};

TEST_P(CliRefuses, WithOneLineAndNoOutput) {
  KINO_REQUIRE_FIXTURES();
  const BadRun& b = GetParam();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  auto r = kino_cli("generate 'a red circle' --model " + shell_quote(kManifest) + " -o " + shell_quote(dir / "out/v.mp4") + " " + b.args);
  EXPECT_EQ(r.exit_code, b.exit_code) << r.err;
  EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(count_files(dir / "out"), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CliRefuses,
    ::testing::Values(BadRun{"frames_strict", "--frames 8 --strict", 1, "--frames must be 4k+1, got 8 (nearest valid: 9)"},
                      BadRun{"size_strict", "--size 50x48 --strict", 1, "width must be a multiple of 16, got 50"},
                      BadRun{"impossible_size", "--size 0x48", 1, "--size must be between 1 and 8192"},
                      BadRun{"impossible_frames", "--frames 100000", 1, "--frames must be in 1..4097"},
                      // Usage mistakes (issue 32): exit 2, before any model loads.
                      BadRun{"size_syntax", "--size big", 2, "--size must look like WIDTHxHEIGHT, got 'big'"},
                      BadRun{"unknown_preset", "--preset nope", 2, "unknown preset 'nope'"},
                      BadRun{"dtype", "--dtype foo", 2, "--dtype"},
                      BadRun{"sampler", "--sampler ddim", 2, "sampler"},
                      BadRun{"bad_device", "--device tpu", 1, "device 'tpu'"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(Cli, MissingModelIsNamed) {
  kino::test::TempDir dir;
  auto r = kino_cli("generate 'x' --model /nonexistent/kino.json -o " + shell_quote(dir / "v.mp4"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model manifest not found: /nonexistent/kino.json"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(count_files(dir.path), 0u);
}

TEST(Cli, MissingOutputFolderFailsBeforeGenerating) {
  KINO_REQUIRE_FIXTURES();
  auto r = kino_cli("generate 'x' --model " + shell_quote(kManifest) + " -o /nonexistent-kino/v.mp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("output folder does not exist: /nonexistent-kino"), std::string::npos) << r.err;
}

// Global options after the subcommand, suggestions for typos (usage errors,
// exit 2, one line), an MKV's settings read back (Matroska capitalises its
// tag names), and `-o - --json` keeping stdout for the video.
TEST(Cli, OptionsTyposMkvAndStdout) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  const std::string model = " --model " + shell_quote(kManifest);
  auto quiet = kino_cli("generate x" + model + " -q -o " + shell_quote(dir / "a.mkv"));
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  auto info = kino_cli("info " + shell_quote(dir / "a.mkv") + " --json");
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("\"prompt\":\"x\""), std::string::npos) << info.out;
  auto again = kino_cli("generate --from " + shell_quote(dir / "a.mkv") + model + " -q -o " + shell_quote(dir / "b.mkv"));
  EXPECT_EQ(again.exit_code, 0) << again.err;

  auto sub = kino_cli("gen x");
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_NE(sub.err.find("did you mean generate?"), std::string::npos) << sub.err;
  EXPECT_EQ(count_lines(sub.err), 1u) << sub.err;
  auto option = kino_cli("generate x --seeds 3" + model);
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_NE(option.err.find("did you mean --seed?"), std::string::npos) << option.err;

  auto piped = kino::test::run_command(std::string(KINO_BINARY) + " generate x" + model + " -q --json -o - > " +
                                       shell_quote(dir / "v.mp4") + " 2> " + shell_quote(dir / "err"));
  EXPECT_EQ(piped.exit_code, 0);
  const std::string video = kino::test::read_file(dir / "v.mp4");
  EXPECT_EQ(video.substr(4, 4), "ftyp");
  EXPECT_EQ(video.find("\"settings\""), std::string::npos) << "the JSON record went into the video stream";
  EXPECT_NE(kino::test::read_file(dir / "err").find("\"settings\""), std::string::npos);
}

// The same frames give the same MP4 bytes whatever CPUs the process may use
// (x264's output follows its thread count, which follows those by default).
TEST(Cli, Mp4BytesDoNotDependOnTheCpusAvailable) {
  if (kino::test::run_command("command -v taskset").exit_code != 0) GTEST_SKIP() << "no taskset";
  kino::test::TempDir dir;
  std::vector<std::string> bytes;
  for (const char* cpus : {"0", "0-63"}) {
    const std::string out = dir / (std::string("cpus") + cpus[0] + std::to_string(bytes.size()) + ".mp4");
    const auto r = kino::test::run_command(std::string("taskset -c ") + cpus + " " + KINO_BINARY +
                                           " -q generate 'a big yellow triangle growing on a navy background' --seed 5 --size 160x96"
                                           " --frames 33 --steps 4 -o " + shell_quote(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bytes.push_back(kino::test::read_file(out));
  }
  ASSERT_FALSE(bytes[0].empty());
  EXPECT_TRUE(bytes[0] == bytes[1]) << "the MP4 bytes differ between one CPU and all";
}

// --audio mistakes are found before the model loads, not after the render:
// a missing file, a file without audio, an output that cannot carry sound.
TEST(Cli, AudioMistakesFailBeforeGenerating) {
  kino::test::TempDir dir;
  { std::ofstream(dir / "not-audio.wav") << "plain text, no audio here"; }
  const std::pair<std::string, std::string> cases[] = {
      {"--audio " + shell_quote(dir / "missing.wav") + " -o " + shell_quote(dir / "a.mp4"), "missing.wav"},
      {"--audio " + shell_quote(dir / "not-audio.wav") + " -o " + shell_quote(dir / "a.mp4"), "not-audio.wav"},
      {"--audio " + shell_quote(dir / "missing.wav") + " -o " + shell_quote(dir / "f_%04d.png"), "needs a container output"},
  };
  for (const auto& [args, expect] : cases) {
    const auto r = kino_cli("generate 'a red circle' " + args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(" steps of "), std::string::npos) << "generation started: " << r.err;
  }
  EXPECT_EQ(count_files(dir.path), 1u);  // only not-audio.wav
}

// --from reproduces what the video records beyond its settings: a label is
// drawn again (and recorded again); a model other than the recorded one is
// refused in one line, before it loads, and nothing is written.
TEST(Cli, FromRedrawsTheLabelAndNamesAnotherModel) {
  kino::test::TempDir dir;
  const auto made = kino_cli("generate 'a red circle' --model " + shell_quote(kManifest) + " --label -q -o " + shell_quote(dir / "a.mp4"));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto again = kino_cli("generate --from " + shell_quote(dir / "a.mp4") + " --model " + shell_quote(kManifest) + " -o " +
                              shell_quote(dir / "b.mp4"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("was made with the model"), std::string::npos) << again.err;
  const auto info = kino_cli("info " + shell_quote(dir / "b.mp4") + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["label"], true) << info.out;
  EXPECT_EQ(kino::test::read_file(dir / "a.mp4"), kino::test::read_file(dir / "b.mp4"));  // the same video
  const auto other = kino_cli("-q generate --from " + shell_quote(dir / "a.mp4") + " --steps 1 -o " + shell_quote(dir / "c.mp4"));
  EXPECT_EQ(other.exit_code, 1) << other.err;
  EXPECT_NE(other.err.find("was made with the model 'wan21-tiny-fixture'; this one is 'kino-tiny'"), std::string::npos) << other.err;
  EXPECT_EQ(count_lines(other.err), 1u) << other.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "c.mp4"));
}
