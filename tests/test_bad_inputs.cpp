// The bad-input corpus: every input is untrusted. Each case gives a one-line
// error naming the file, field or value, the documented exit code (1 failed,
// 2 usage, 130 interrupted), no crash and no partial output file; in a batch
// the other items are still rendered. Runs the binary on the fixture model.
// (Malformed weight files are unit-tested in test_tensor_files.cpp, bad
// sizes and settings in test_cli.cpp, batch interruption in test_pipelines.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "loading/tensor_file.h"
#include "support.h"

namespace fs = std::filesystem;
using kino::test::count_files;
using kino::test::count_lines;
using kino::test::kino_cli;
using kino::test::read_file;
using kino::test::shell_quote;

namespace {

const std::string& kManifest = kino::test::fixture_manifest_path();

// The fixture model's manifest with absolute paths, to be edited and saved
// into a test folder.
nlohmann::json fixture_manifest() {
  nlohmann::json m = nlohmann::json::parse(std::ifstream(kManifest));
  const fs::path base = fs::path(kManifest).parent_path();
  for (const char* key : {"text_encoder", "transformer", "vae"})
    m[key]["weights"] = fs::absolute(base / m[key]["weights"].get<std::string>()).lexically_normal().string();
  m["tokenizer"] = fs::absolute(base / m["tokenizer"].get<std::string>()).lexically_normal().string();
  return m;
}

// Expects a failed run: exit code, one line naming `what`, no file in `dir`.
void expect_refused(const kino::test::CommandResult& r, int exit_code, const std::string& what, const std::string& dir) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(count_files(dir), 0u) << "partial output left in " << dir;
}

}  // namespace

TEST(BadInput, CorruptOrMismatchedWeightsAreNamed) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  const std::string run = "generate 'x' --model " + shell_quote(dir.path) + " -o " + shell_quote(dir / "out/v.mp4");
  nlohmann::json m = fixture_manifest();

  // A DiT file cut short.
  const std::string dit = read_file(m["transformer"]["weights"].get<std::string>());
  std::ofstream(dir / "dit.safetensors", std::ios::binary) << dit.substr(0, dit.size() - 100);
  m["transformer"]["weights"] = "dit.safetensors";
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "dit.safetensors", dir / "out");

  // A config that disagrees with the tensors' shapes.
  m = fixture_manifest();
  m["transformer"]["config"]["ffn_dim"] = 96;
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "blocks.0.ffn.0.weight", dir / "out");

  // The official VAE checkpoint (.pth) cut short.
  const std::string pth = read_file(kino::test::fixture_dir("wan21-layouts") + "/official/Wan2.1_VAE.pth");
  std::ofstream(dir / "vae.pth", std::ios::binary) << pth.substr(0, pth.size() / 2);
  m = fixture_manifest();
  m["vae"]["weights"] = "vae.pth";
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "vae.pth", dir / "out");

  // A transformer file from another component (the VAE's names).
  m = fixture_manifest();
  m["transformer"]["weights"] = m["vae"]["weights"];
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "patch_embedding.weight", dir / "out");

  // A second expert without its boundary, a boundary without a second expert.
  m = fixture_manifest();
  m["transformer_low_noise"] = m["transformer"];
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "boundary_ratio", dir / "out");
  m.erase("transformer_low_noise");
  m["boundary_ratio"] = 0.9;
  std::ofstream(dir / "kino.json") << m.dump();
  expect_refused(kino_cli(run), 1, "boundary_ratio", dir / "out");
}

// Release folders of kinds kino does not run are named, not half-loaded.
TEST(BadInput, UnsupportedReleaseFoldersAreNamed) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  fs::create_directory(dir / "m");
  const std::string run = "generate 'x' --model " + shell_quote(dir / "m") + " -o " + shell_quote(dir / "out/v.mp4");
  expect_refused(kino_cli(run), 1, "model_index.json", dir / "out");  // nothing kino knows in it
  std::ofstream(dir / "m/config.json") << R"({"_class_name": "WanModel", "model_type": "s2v"})";
  expect_refused(kino_cli(run), 1, "model_type 's2v'", dir / "out");
  std::ofstream(dir / "m/config.json") << R"({"_class_name": "WanModel", "model_type": 7})";
  expect_refused(kino_cli(run), 1, "field 'model_type' must be a string", dir / "out");
  std::ofstream(dir / "m/model_index.json") << R"({"_class_name": "WanAnimatePipeline"})";
  expect_refused(kino_cli(run), 1, "WanAnimatePipeline", dir / "out");
  std::ofstream(dir / "m/model_index.json") << R"([1, 2])";
  expect_refused(kino_cli(run), 1, "model_index.json: not a JSON object", dir / "out");
}

// Images that are not ones kino reads, for the models that take images
// (Wan2.1 I2V and Wan2.2 TI2V): each gets one line naming the file and what
// is wrong, before any work, and no output. Nothing behind a URL, a
// playlist or a FIFO is read.
TEST(BadInput, BadImagesAreNamed) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  std::ofstream(dir / "text.png") << "not a picture";
  const std::string png = read_file(kino::test::fixture("i2v_image.png", "wan-i2v-tiny"));
  std::ofstream(dir / "truncated.png", std::ios::binary) << png.substr(0, png.size() / 2);
  std::ofstream(dir / "playlist.png") << "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" << dir / "secret.png" << "\n#EXT-X-ENDLIST\n";
  fs::create_directory(dir / "folder.png");
  ASSERT_EQ(::mkfifo((dir / "fifo.png").c_str(), 0600), 0);
  const std::string images = std::string(KINO_TEST_DATA_DIR) + "/images/";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir / "text.png", "text.png: not a PNG, JPEG"},
      {dir / "truncated.png", "truncated.png: the image could not be decoded"},
      {dir / "playlist.png", "playlist.png: not a PNG, JPEG"},
      {dir / "folder.png", "folder.png: not a regular file"},
      {dir / "fifo.png", "fifo.png: not a regular file"},
      {dir / "missing.png", "missing.png: no such file"},
      {"http://127.0.0.1:9/x.png", "local files only"},
      {images + "one_pixel.png", "image of 1x1 is smaller than 16 pixels"},
      {images + "bomb_9000x9000.png", "image of 9000x9000 is larger than kino reads"}};
  for (const char* model : {"wan21-i2v-tiny", "wan22-ti2v-tiny"})
    for (const auto& [image, what] : cases) {
      SCOPED_TRACE(model + std::string(" ") + image);
      const auto start = std::chrono::steady_clock::now();
      expect_refused(kino_cli("generate 'x' --model " + shell_quote(std::string(KINO_TEST_DATA_DIR) + "/" + model + ".kino.json") +
                              " --image " + shell_quote(image) + " -o " + shell_quote(dir / "out/v.mp4")),
                     1, what, dir / "out");
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20)) << "the bomb was decoded";
    }
}

TEST(BadInput, ManifestPointingAtAMissingFile) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  nlohmann::json m = fixture_manifest();
  m["vae"]["weights"] = "gone.safetensors";
  std::ofstream(dir / "kino.json") << m.dump();
  auto r = kino_cli("generate 'x' --model " + shell_quote(dir.path) + " -o " + shell_quote(dir / "out/v.mp4"));
  expect_refused(r, 1, "vae file not found: " + (fs::path(dir.path) / "gone.safetensors").string(), dir / "out");

  // A default the pipeline cannot run, named with its value.
  m = fixture_manifest();
  m["defaults"] = {{"steps", 0}};
  std::ofstream(dir / "kino.json") << m.dump();
  r = kino_cli("generate 'x' --model " + shell_quote(dir.path) + " -o " + shell_quote(dir / "out/v.mp4"));
  expect_refused(r, 1, "field 'steps' = 0 is outside [1, 1000]", dir / "out");
}

TEST(BadInput, EmptyPromptIsAUsageError) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  for (const char* prompt : {"''", "'   '"})
    expect_refused(kino_cli(std::string("generate ") + prompt + " --model " + shell_quote(kManifest) + " -o " + shell_quote(dir / "v.mp4")), 2,
                   "the prompt is empty", dir.path);
}

TEST(BadInput, OverlongPromptIsTruncatedWithAWarning) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  std::string prompt;
  for (int i = 0; i < 200; ++i) prompt += "a red circle ";
  auto r = kino_cli("generate " + shell_quote(prompt) + " --model " + shell_quote(kManifest) + " --steps 2 -o " + shell_quote(dir / "v.mp4"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[warning] the prompt is longer than the text encoder's 32 tokens; the rest is ignored"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir / "v.mp4"));
}

TEST(BadInput, InvalidUtf8LineFailsAloneInABatch) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  std::ofstream(dir / "prompts.txt", std::ios::binary) << "a red circle\n\xff\xfe broken\na blue square\n";
  fs::create_directory(dir / "out");
  auto r = kino_cli("batch " + shell_quote(dir / "prompts.txt") + " --model " + shell_quote(kManifest) + " --steps 2 -d " +
                    shell_quote(dir / "out") + " --name '{index}.mp4'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir / "prompts.txt:2: not valid UTF-8"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir / "out/0000.mp4"));
  EXPECT_FALSE(fs::exists(dir / "out/0001.mp4"));
  EXPECT_TRUE(fs::exists(dir / "out/0002.mp4"));
  EXPECT_EQ(count_files(dir / "out"), 2u);
}

TEST(BadInput, UnreadablePromptFileIsNamed) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  const std::string out = dir / "out";
  fs::create_directory(out);
  // A missing file, and a folder (it opens, then the first read fails).
  for (const auto& [file, why] : {std::pair<std::string, std::string>{dir / "missing.txt", "No such file or directory"},
                                  {dir.path, "Is a directory"}}) {
    const auto r = kino_cli("batch " + shell_quote(file) + " --model " + shell_quote(kManifest) + " -d " + shell_quote(out));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("cannot read prompt file " + file + ": " + why), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(count_files(out), 0u) << "nothing is written for a batch that cannot start";
  }
}

TEST(BadInput, UnwritableOutputFolder) {
  KINO_REQUIRE_FIXTURES();
  // /proc refuses new files even to root, unlike a chmod-ed folder.
  auto r = kino_cli("generate 'x' --model " + shell_quote(kManifest) + " --steps 2 -o /proc/kino-test.mp4");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("output folder is not writable: /proc"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << "refused before loading the model: " << r.err;
  EXPECT_FALSE(fs::exists("/proc/kino-test.mp4"));
}

TEST(BadInput, RequestsBeyondTheAvailableMemoryAreRefusedWithWhatFits) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  // Valid sizes (within 8192x8192x4096), but hundreds of GB for the video
  // alone; shorter or smaller clips of the tiny model fit.
  const auto r = kino_cli("generate 'a red circle' --model " + shell_quote(kManifest) +
                          " --size 2048x2048 --frames 4093 -o " + shell_quote(dir / "v.mp4"));
  expect_refused(r, 1, "2048x2048x4093 needs about", dir.path);
  EXPECT_NE(r.err.find(" are available: try --"), std::string::npos) << r.err;
}

TEST(BadInput, FullDiskLeavesNoPartialFile) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  // A file-size limit of 4 KiB makes writes fail the way a full disk does
  // (EFBIG instead of ENOSPC), for any user and without mounting anything.
  auto r = kino::test::run_command("ulimit -f 4; exec " + std::string(KINO_BINARY) + " generate 'a red circle' --model " +
                                   shell_quote(kManifest) + " --steps 2 --size 128x128 --frames 17 -o " + shell_quote(dir / "v.mp4"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("[error] cannot write " + dir / "v.mp4" + ": File too large"), std::string::npos) << r.err;
  EXPECT_EQ(count_files(dir.path), 0u) << "partial output left";
}

TEST(BadInput, FullTmpfsGivesNoSpaceAndNoPartialFile) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  // A 16 KiB tmpfs in a private mount namespace (root, or a user namespace):
  // the real ENOSPC, gone with the process.
  const std::string ns = geteuid() == 0 ? "unshare -m" : "unshare -Urm";
  const std::string mount = "mount -t tmpfs -o size=16k tmpfs " + shell_quote(dir.path);
  if (kino::test::run_command(ns + " sh -c " + shell_quote(mount)).exit_code != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (no mount namespace)";
  const std::string out = dir / "v.mp4";
  const auto r = kino::test::run_command(
      ns + " sh -c " +
      shell_quote(mount + " && { " + KINO_BINARY + " -q generate 'a red circle' --model " + shell_quote(kManifest) +
                  " --steps 2 --size 128x128 --frames 17 -o " + shell_quote(out) +
                  "; rc=$?; echo \"left: $(ls -A " + shell_quote(dir.path) + " | wc -l)\"; exit $rc; }"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("[error] cannot write " + out + ": No space left on device"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.out.find("left: 0"), std::string::npos) << "partial output left: " << r.out;
}

TEST(BadInput, SigtermStopsAtTheNextStepWithNoPartialFile) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  const std::string cmd = std::string(KINO_BINARY) + " generate 'a red circle' --model " + shell_quote(kManifest) +
                          " --steps 1000 --progress json -o " + shell_quote(dir / "out/v.mp4");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " 2>" + shell_quote(dir / "err.txt")).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until denoising has started, then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (read_file(dir / "err.txt").find("\"denoise\"") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NE(read_file(dir / "err.txt").find("interrupted; no partial output left"), std::string::npos);
  EXPECT_EQ(count_files(dir / "out"), 0u);
}

// JSON nested 100,000 levels deep, in every kind of JSON file kino reads (a
// manifest, a preset in $KINO_PRESETS, a storyboard, a JSONL line, a
// video's kino_settings): one line naming the file, exit 1, no crash.
TEST(BadInput, DeepJsonIsRefusedWhileParsing) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  fs::create_directory(dir / "presets");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::ofstream(dir / "kino.json") << R"({"kino_manifest": 1, "x": )" << deep << "}";
  std::ofstream(dir / "presets/deep.json") << deep;
  std::ofstream(dir / "board.json") << R"({"shots": )" << deep << "}";
  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "x", "seed": )" << deep << "}\n";
  expect_refused(kino_cli("model " + shell_quote(dir / "kino.json")), 1, "kino.json: JSON nested deeper than 64 levels", dir / "out");
  expect_refused(kino_cli("generate x --model " + shell_quote(dir / "kino.json") + " -o " + shell_quote(dir / "out/v.mp4")), 1,
                 "nested deeper", dir / "out");
  expect_refused(kino::test::run_command("KINO_PRESETS=" + shell_quote(dir / "presets") + " " + KINO_BINARY + " presets"), 1,
                 "deep.json: JSON nested deeper", dir / "out");
  expect_refused(kino_cli("storyboard " + shell_quote(dir / "board.json") + " --model " + shell_quote(kManifest) + " -o " +
                          shell_quote(dir / "out/s.mp4")),
                 1, "board.json: JSON nested deeper", dir / "out");
  const auto batch = kino_cli("batch " + shell_quote(dir / "prompts.jsonl") + " --model " + shell_quote(kManifest) + " --output-dir " +
                              shell_quote(dir / "out"));
  EXPECT_EQ(batch.exit_code, 1) << batch.err;
  EXPECT_NE(batch.err.find("prompts.jsonl:1: JSON nested deeper"), std::string::npos) << batch.err;
  EXPECT_EQ(count_files(dir / "out"), 0u);
  // A video whose kino_settings nest too deep (Matroska keeps any tag).
  const auto made = kino::test::run_command("ffmpeg -v error -f lavfi -i color=c=black:s=32x32:d=0.1 -metadata kino_settings=" +
                                            shell_quote(std::string(5000, '[')) + " " + shell_quote(dir / "deep.mkv"));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_refused(kino_cli("info " + shell_quote(dir / "deep.mkv")), 1, "kino_settings: JSON nested deeper", dir / "out");
  expect_refused(kino_cli("generate --from " + shell_quote(dir / "deep.mkv") + " --model " + shell_quote(kManifest) + " -o " +
                          shell_quote(dir / "out/v.mp4")),
                 1, "nested deeper", dir / "out");
}

// `kino info` prints a video's metadata with control characters escaped: an
// escape sequence in a prompt cannot drive the terminal.
TEST(BadInput, InfoEscapesControlCharacters) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  auto r = kino_cli("generate " + shell_quote("red \x1b[2J circle") + " --model " + shell_quote(kManifest) + " -q -o " +
                    shell_quote(dir / "v.mp4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = kino_cli("info " + shell_quote(dir / "v.mp4"));
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(info.out.find('\x1b'), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\\u001b[2J"), std::string::npos) << info.out;
}

// Nothing that is not a regular file is read as weights or replaced by an
// output: a FIFO as the transformer's weights is refused at once (no
// wait for a writer), a FIFO as -o stays a FIFO; an output name whose
// temporary name would not fit is refused before rendering.
TEST(BadInput, FifosAndOverlongNamesAreRefusedBeforeWork) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  ASSERT_EQ(::mkfifo((dir / "weights.safetensors").c_str(), 0600), 0);
  nlohmann::json m = fixture_manifest();
  m["transformer"]["weights"] = dir / "weights.safetensors";
  std::ofstream(dir / "kino.json") << m.dump();
  const auto start = std::chrono::steady_clock::now();
  expect_refused(kino_cli("generate x --model " + shell_quote(dir / "kino.json") + " -o " + shell_quote(dir / "out/v.mp4")), 1,
                 "not a regular file", dir / "out");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));

  ASSERT_EQ(::mkfifo((dir / "out/pipe.mp4").c_str(), 0600), 0);
  const auto r = kino_cli("generate x --model " + shell_quote(kManifest) + " -o " + shell_quote(dir / "out/pipe.mp4"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not a regular file"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_fifo(dir / "out/pipe.mp4"));
  fs::remove(dir / "out/pipe.mp4");

  const std::string long_name = std::string(240, 'a') + ".mp4";
  expect_refused(kino_cli("generate x --model " + shell_quote(kManifest) + " -o " + shell_quote(dir / ("out/" + long_name))), 1,
                 "output file name is too long", dir / "out");
}

// Poisoned weights: a NaN in one transformer bias, an infinity in one VAE
// weight. Each is named at load, before anything is generated (they would
// otherwise give an all-black or all-white video and exit 0).
TEST(BadInput, NonFiniteWeightsAreNamedAtLoad) {
  KINO_REQUIRE_FIXTURES();
  kino::test::TempDir dir;
  fs::create_directory(dir / "out");
  nlohmann::json m = fixture_manifest();
  for (const auto& [component, tensor, value] :
       {std::tuple{"transformer", "blocks.0.self_attn.q.bias", NAN}, std::tuple{"vae", "decoder.head.2.weight", INFINITY}}) {
    const std::string source = m[component]["weights"];
    const kino::TensorFile file = kino::TensorFile::open(source);
    std::vector<std::vector<uint8_t>> copies;
    std::vector<kino::TensorToWrite> out;
    for (const auto& v : file.tensors()) {
      copies.emplace_back(v.data, v.data + v.nbytes);
      if (v.name == tensor) {
        ASSERT_EQ(v.dtype, kino::DType::F32);
        const float poison = value;
        std::memcpy(copies.back().data(), &poison, sizeof poison);
      }
      out.push_back({v.name, v.dtype, v.shape, copies.back().data()});
    }
    const std::string poisoned = dir / (std::string(component) + ".safetensors");
    kino::write_safetensors(poisoned, out);
    nlohmann::json bad = m;
    bad[component]["weights"] = poisoned;
    std::ofstream(dir / "kino.json") << bad.dump();
    expect_refused(kino_cli("generate x --model " + shell_quote(dir / "kino.json") + " -o " + shell_quote(dir / "out/v.mp4")), 1,
                   std::string("tensor '") + tensor + "' holds NaN or infinite values", dir / "out");
  }
}
