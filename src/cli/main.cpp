// kino command line: a thin layer over the kino library.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "kino/atomic_file.h"
#include "kino/error.h"
#include "kino/manifest.h"
#include "kino/pipeline.h"
#include "kino/video_writer.h"

namespace {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitInterrupted = 130;

extern "C" void on_signal(int) { kino::request_stop(); }

// The embedded default: models/kino-tiny next to the binary's source tree or
// installed share folder, or $KINO_MODEL.
std::string default_model() {
  if (const char* env = std::getenv("KINO_MODEL")) return env;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& c : {exe.parent_path().parent_path() / "models" / "kino-tiny",
                            exe.parent_path().parent_path() / "share" / "kino" / "models" / "kino-tiny",
                            fs::path(KINO_SOURCE_DIR) / "models" / "kino-tiny"})
    if (fs::exists(c / "kino.json", ec)) return c.string();
  return (fs::path(KINO_SOURCE_DIR) / "models" / "kino-tiny").string();
}

bool parse_size(const std::string& s, int64_t& w, int64_t& h) {
  char x = 0;
  long long a = 0, b = 0;
  char rest = 0;
  if (std::sscanf(s.c_str(), "%lld%c%lld%c", &a, &x, &b, &rest) != 3 || (x != 'x' && x != 'X')) return false;
  w = a;
  h = b;
  return true;
}

std::map<std::string, std::string> provenance(const kino::GenerationSettings& s, const kino::ModelManifest& m) {
  nlohmann::json j = {{"prompt", s.prompt}, {"negative", s.negative}, {"seed", s.seed},      {"steps", s.steps},
                      {"cfg", s.cfg},       {"shift", s.shift},       {"sampler", s.sampler}, {"width", s.width},
                      {"height", s.height}, {"frames", s.frames},     {"fps", s.fps},         {"model", m.name},
                      {"kino_version", KINO_VERSION}};
  return {{"title", s.prompt},
          {"comment", "AI-generated video (kino " KINO_VERSION ", model " + m.name + ")"},
          {"ai_generated", "true"},
          {"kino_settings", j.dump()},
          {"encoder", "kino " KINO_VERSION}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino: text-to-video from the command line"};
  app.set_version_flag("--version", "kino " KINO_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "More log output (repeatable)");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  auto* gen = app.add_subcommand("generate", "Generate a video from a prompt");
  std::string prompt, output = "kino.mp4", model_path, size, sampler, device = "cpu", dtype = "float32", negative;
  int64_t seed = -1, steps = 0, frames = 0;
  double cfg = -1, shift = -1, fps = -1;
  int threads = 0;
  gen->add_option("prompt", prompt, "What the video shows")->required();
  gen->add_option("-o,--output", output, "Output file: .mp4, or a PNG pattern like frames/out_%04d.png")->capture_default_str();
  gen->add_option("-m,--model", model_path, "Model folder or kino.json (default: the embedded kino-tiny)");
  gen->add_option("-n,--negative", negative, "Negative prompt (default: the model's)");
  gen->add_option("-s,--seed", seed, "Random seed (default: random, reported)")->check(CLI::NonNegativeNumber);
  gen->add_option("--steps", steps, "Sampling steps")->check(CLI::Range(1, 1000));
  gen->add_option("--cfg", cfg, "Classifier-free guidance scale")->check(CLI::NonNegativeNumber);
  gen->add_option("--shift", shift, "Sigma shift of the schedule")->check(CLI::PositiveNumber);
  gen->add_option("--sampler", sampler, "unipc, dpm++ or euler")->check(CLI::IsMember({"unipc", "dpm++", "euler"}));
  gen->add_option("--size", size, "WxH, multiples of 16");
  gen->add_option("--frames", frames, "Frame count, 4k+1")->check(CLI::PositiveNumber);
  gen->add_option("--fps", fps, "Frames per second of the output")->check(CLI::PositiveNumber);
  gen->add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  gen->add_option("--dtype", dtype, "float32, bfloat16 or float16")->capture_default_str();
  gen->add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "kino: %s (see kino --help)\n", e.what());
    return kExitUsage;
  }

  auto logger = spdlog::stderr_color_mt("kino");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");
  spdlog::set_level(quiet ? spdlog::level::err : verbosity > 0 ? spdlog::level::debug : spdlog::level::info);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  try {
    kino::GenerationRequest req;
    req.prompt = prompt;
    if (!negative.empty()) req.negative = negative;
    if (seed >= 0) req.seed = static_cast<uint64_t>(seed);
    if (steps > 0) req.steps = steps;
    if (cfg >= 0) req.cfg = cfg;
    if (shift > 0) req.shift = shift;
    if (fps > 0) req.fps = fps;
    if (frames > 0) req.frames = frames;
    if (!sampler.empty()) req.sampler = sampler;
    if (!size.empty()) {
      int64_t w = 0, h = 0;
      if (!parse_size(size, w, h)) {
        spdlog::error("--size must look like WIDTHxHEIGHT, got '{}'", size);
        return kExitUsage;
      }
      req.width = w;
      req.height = h;
    }
    if (output.empty()) throw kino::Error("--output is empty");
    // Fail on an unusable destination before spending time on generation.
    kino::check_output_folder(kino::is_frame_pattern(output) ? kino::frame_path(output, 0) : output);

    const kino::ModelManifest model = kino::load_manifest(model_path.empty() ? default_model() : model_path);
    spdlog::debug("model {} from {}", model.name, model.path);
    kino::RuntimeOptions rt{device, dtype, threads};
    kino::Pipeline pipeline(model, rt);
    const kino::GenerationSettings settings = pipeline.resolve(req);
    spdlog::info("{}x{}, {} frames, {} steps of {}, cfg {}, seed {}", settings.width, settings.height, settings.frames,
                 settings.steps, settings.sampler, settings.cfg, settings.seed);
    kino::StageTimes times;
    const bool tty = isatty(STDERR_FILENO) && !quiet;
    kino::Video video = pipeline.generate(
        settings,
        [&](const kino::Progress& p) {
          if (tty && p.stage == "denoise" && p.steps > 0) std::fprintf(stderr, "\rdenoise %lld/%lld", (long long)p.step, (long long)p.steps);
          if (tty && p.stage == "decode") std::fprintf(stderr, "\n");
        },
        &times);
    if (kino::stop_requested()) throw kino::Interrupted();
    const auto files = kino::write_video(output, video, provenance(settings, model));
    spdlog::info("wrote {} ({} file{}); text {:.2f}s, denoise {:.2f}s, decode {:.2f}s", output, files.size(),
                 files.size() == 1 ? "" : "s", times.text_s, times.denoise_s, times.decode_s);
    return kExitOk;
  } catch (const kino::Interrupted&) {
    spdlog::error("interrupted; nothing written");
    return kExitInterrupted;
  } catch (const kino::Error& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return kExitFailure;
  }
}
