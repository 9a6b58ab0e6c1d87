// kino command line: a thin layer over the kino library (argument parsing,
// logging, exit codes). The work is in kino/runner.h and kino/pipeline.h.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kino/atomic_file.h"
#include "kino/error.h"
#include "kino/manifest.h"
#include "kino/presets.h"
#include "kino/runner.h"

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitInterrupted = 130;

extern "C" void on_signal(int) { kino::request_stop(); }

// A mistake in how kino was called (exit code 2), found after parsing.
struct UsageError : kino::Error {
  using kino::Error::Error;
};

// The embedded default: models/kino-tiny beside the binary's tree, installed
// under share/kino, or in the source tree; $KINO_MODEL overrides.
std::string default_model() {
  if (const char* env = std::getenv("KINO_MODEL")) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& c : {exe.parent_path().parent_path() / "models" / "kino-tiny",
                            exe.parent_path().parent_path() / "share" / "kino" / "models" / "kino-tiny",
                            fs::path(KINO_SOURCE_DIR) / "models" / "kino-tiny"})
    if (fs::exists(c / "kino.json", ec)) return c.string();
  return (fs::path(KINO_SOURCE_DIR) / "models" / "kino-tiny").string();
}

// Options shared by generate, batch and storyboard.
struct Common {
  std::string model, device = "auto", dtype = "auto", size, aspect, image, negative, sampler, progress = "auto", audio, format;
  std::string preset;
  int64_t seed = -1, steps = 0, frames = 0;
  double cfg = -1, cfg_low_noise = -1, shift = -1, fps = -1, seconds = -1;
  int threads = 0;
  int64_t vae_tile = 0;
  bool json = false, strict = false, label = false, keep_experts = false;

  void add_to(CLI::App* app, bool generation_settings = true) {
    app->add_option("-m,--model", model, "Model folder or kino.json (default: the embedded kino-tiny)");
    app->add_option("--device", device, "auto (cuda when there is one), cpu or cuda[:N]")->capture_default_str();
    app->add_option("--dtype", dtype, "auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16 or float16")->capture_default_str();
    app->add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app->add_option("--vae-tile", vae_tile, "Decode in overlapping tiles of this many pixels (bounded memory for large frames; 0: off)")
        ->check(CLI::NonNegativeNumber);
    app->add_flag("--keep-experts", keep_experts,
                  "Two-expert models (Wan2.2 A14B) on a GPU: keep both on the device (default: the idle one waits in host "
                  "memory)");
    app->add_flag("--json", json, "Print one JSON object per finished video on stdout");
    app->add_option("--progress", progress, "auto (a bar on a terminal), bar, json (events on stderr) or none")
        ->check(CLI::IsMember({"auto", "bar", "json", "none"}));
    app->add_flag("--strict", strict, "Refuse sizes and frame counts the model cannot take instead of rounding them");
    app->add_flag("--label", label, "Draw an AI-GENERATED label into the frames");
    if (!generation_settings) return;
    app->add_option("-n,--negative", negative, "Negative prompt (default: the model's)");
    app->add_option("-s,--seed", seed, "Random seed (default: random, reported)")->check(CLI::NonNegativeNumber);
    app->add_option("--steps", steps, "Sampling steps")->check(CLI::Range(1, 1000));
    app->add_option("--cfg", cfg, "Classifier-free guidance scale (two-expert models: both experts)")->check(CLI::NonNegativeNumber);
    app->add_option("--cfg-low-noise", cfg_low_noise, "Guidance scale of a two-expert model's low-noise expert")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--shift", shift, "Sigma shift of the schedule")->check(CLI::PositiveNumber);
    app->add_option("--sampler", sampler, "unipc, dpm++ or euler")->check(CLI::IsMember({"unipc", "dpm++", "euler"}));
    app->add_option("--size", size, "WxH (multiples of 16 for Wan models)");
    app->add_option("--aspect", aspect, "16:9, 9:16, 1:1, ...: the model's nearest size of that shape");
    app->add_option("--frames", frames, "Frame count (4k+1)")->check(CLI::PositiveNumber);
    app->add_option("--seconds", seconds, "Duration; frames = seconds x fps, rounded to a valid count")->check(CLI::PositiveNumber);
    app->add_option("--fps", fps, "Frames per second of the output")->check(CLI::PositiveNumber);
    app->add_option("--preset", preset, "Style preset (kino presets lists them)");
    app->add_option("--image", image, "First frame to animate (Wan2.2 TI2V models; the size follows the image)");
    app->add_option("--audio", audio, "Audio file to mux (AAC), cut or padded to the video");
    app->add_option("--format", format, "Output format for -o -: mp4 (fragmented) or y4m")->check(CLI::IsMember({"mp4", "y4m"}));
  }

  // Command-line settings over a request (command line wins).
  void apply(kino::GenerationRequest& r) const {
    if (!negative.empty()) r.negative = negative;
    if (seed >= 0) r.seed = static_cast<uint64_t>(seed);
    if (steps > 0) r.steps = steps;
    if (cfg >= 0) r.cfg = cfg;
    if (cfg_low_noise >= 0) r.cfg_low_noise = cfg_low_noise;
    if (shift > 0) r.shift = shift;
    if (fps > 0) r.fps = fps;
    if (frames > 0) r.frames = frames;
    if (seconds > 0) r.seconds = seconds;
    if (!sampler.empty()) r.sampler = sampler;
    if (!aspect.empty()) r.aspect = aspect;
    if (!image.empty()) r.image = image;
    if (!size.empty()) {
      int64_t w = 0, h = 0;
      if (!kino::parse_size(size, w, h)) throw kino::Error(kino::concat("--size must look like WIDTHxHEIGHT, got '", size, "'"));
      r.width = w;
      r.height = h;
    }
  }

  kino::RunOptions run_options() const {
    kino::RunOptions o;
    o.progress = progress == "bar" ? kino::ProgressMode::Bar
                 : progress == "json" ? kino::ProgressMode::Json
                 : progress == "none" ? kino::ProgressMode::None
                                      : kino::ProgressMode::Auto;
    o.strict = strict;
    o.label = label;
    o.write.audio = audio;
    o.write.format = format;
    return o;
  }

  kino::Pipeline load() const {
    const kino::ModelManifest m = kino::load_manifest(model.empty() ? default_model() : model);
    spdlog::debug("model {} from {}", m.name, m.path);
    return kino::Pipeline(m, kino::RuntimeOptions{device, dtype, threads, false, vae_tile, keep_experts});
  }
};

void print_json(const nlohmann::json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

kino::GenerationSettings resolve_logged(kino::Pipeline& p, const kino::GenerationRequest& r, bool strict) {
  kino::GenerationSettings s = p.resolve(r, strict);
  for (const auto& w : s.warnings) spdlog::warn("{}", w);
  return s;
}

int run_generate(const Common& c, const std::string& prompt, const std::string& output, const std::string& from) {
  kino::GenerationRequest req;
  if (!from.empty()) {
    req = kino::request_from_settings(kino::read_provenance(from));
    spdlog::info("settings from {}", from);
  }
  if (!prompt.empty()) req.prompt = prompt;
  if (req.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
    throw UsageError("the prompt is empty (give a PROMPT argument or --from FILE)");
  c.apply(req);
  if (!c.preset.empty()) kino::apply_preset(kino::find_preset(kino::load_presets(), c.preset), req);
  if (output.empty()) throw kino::Error("--output is empty");
  if (output != "-") kino::check_output_folder(kino::is_frame_pattern(output) ? kino::frame_path(output, 0) : output);
  kino::Pipeline pipeline = c.load();
  const kino::GenerationSettings s = resolve_logged(pipeline, req, c.strict);
  const std::string cfg = s.cfg_low_noise == s.cfg ? kino::concat(s.cfg) : kino::concat(s.cfg, " (low noise ", s.cfg_low_noise, ")");
  spdlog::info("{}x{}, {} frames, {} steps of {}, cfg {}, seed {}", s.width, s.height, s.frames, s.steps, s.sampler, cfg, s.seed);
  const nlohmann::json record = kino::render_one(pipeline, s, output, c.run_options());
  const auto& t = record["timings"];
  spdlog::info("wrote {}; text {:.2f}s, denoise {:.2f}s, decode {:.2f}s", output == "-" ? "<stdout>" : output,
               t["text_s"].get<double>(), t["denoise_s"].get<double>(), t["decode_s"].get<double>());
  if (c.json) print_json(record);
  return kExitOk;
}

struct BatchOptions {
  std::string file, output_dir = ".", name = "{index}-{slug}.mp4", shard;
  bool skip_existing = false;
};

int run_batch(const Common& c, const BatchOptions& b) {
  int64_t shard_i = 0, shard_n = 1;
  if (!b.shard.empty()) {
    char slash = 0, rest = 0;
    long long i = 0, n = 0;
    if (std::sscanf(b.shard.c_str(), "%lld%c%lld%c", &i, &slash, &n, &rest) != 3 || slash != '/' || n < 1 || i < 1 || i > n)
      throw kino::Error(kino::concat("--shard must be i/n with 1 <= i <= n, got '", b.shard, "'"));
    shard_i = i - 1;
    shard_n = n;
  }
  std::error_code ec;
  if (!fs::is_directory(b.output_dir, ec)) throw kino::Error(kino::concat("output folder does not exist: ", b.output_dir));
  const std::vector<kino::BatchItem> items = kino::read_prompt_file(b.file);
  const auto presets = kino::load_presets();
  kino::Pipeline pipeline = c.load();  // once for the whole batch
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0, skipped = 0, failed = 0;
  nlohmann::json failures = nlohmann::json::array();
  bool interrupted = false;
  for (const kino::BatchItem& item : items) {
    if (item.index % shard_n != shard_i) continue;
    if (kino::stop_requested()) {
      interrupted = true;
      break;
    }
    auto fail = [&](const std::string& why) {
      ++failed;
      spdlog::error("item {} (line {}): {}", item.index, item.line, why);
      failures.push_back({{"index", item.index}, {"line", item.line}, {"error", why}});
      if (c.json) print_json({{"index", item.index}, {"line", item.line}, {"error", why}});
    };
    if (!item.error.empty()) {
      fail(item.error);
      continue;
    }
    try {
      kino::GenerationRequest req = item.request;
      c.apply(req);
      if (item.request.seed) req.seed = item.request.seed;  // the line's own seed wins
      if (!req.seed) req.seed = static_cast<uint64_t>(item.index);  // reproducible batches: seed = index unless given
      const std::string preset = item.preset.empty() ? c.preset : item.preset;
      if (!preset.empty()) kino::apply_preset(kino::find_preset(presets, preset), req);
      const kino::GenerationSettings s = resolve_logged(pipeline, req, c.strict);
      const std::string name = kino::expand_name(item.output_name.empty() ? b.name : item.output_name, item.index, s.seed, item.request.prompt);
      const std::string path = (fs::path(b.output_dir) / name).string();
      if (b.skip_existing && fs::exists(path, ec)) {
        ++skipped;
        spdlog::info("item {}: {} exists, skipped", item.index, path);
        continue;
      }
      spdlog::info("item {}/{}: {}", item.index + 1, items.size(), s.prompt);
      nlohmann::json record = kino::render_one(pipeline, s, path, c.run_options());
      record["index"] = item.index;
      ++done;
      if (c.json) print_json(record);
    } catch (const kino::Interrupted&) {
      interrupted = true;
      break;
    } catch (const kino::Error& e) {
      fail(e.what());
    }
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("batch: {} done, {} skipped, {} failed{} in {:.1f}s", done, skipped, failed, interrupted ? ", interrupted" : "", total);
  if (c.json)
    print_json({{"summary", {{"done", done}, {"skipped", skipped}, {"failed", failed}, {"interrupted", interrupted},
                             {"items", items.size()}, {"seconds", total}, {"failures", failures}}}});
  if (interrupted) return kExitInterrupted;
  return failed ? kExitFailure : kExitOk;
}

int run_storyboard(const Common& c, const std::string& file, const std::string& output) {
  const kino::Storyboard board_file = kino::read_storyboard(file);
  const double crossfade = board_file.crossfade;
  const auto presets = kino::load_presets();
  kino::Pipeline pipeline = c.load();
  kino::RunOptions opts = c.run_options();

  // Resolve every shot first, so that a bad shot fails before any rendering.
  std::vector<kino::GenerationSettings> shots;
  for (size_t i = 0; i < board_file.shots.size(); ++i) {
    const std::string where = kino::concat(file, " shot ", i + 1);
    const auto& shot = board_file.shots[i];
    kino::GenerationRequest req;
    c.apply(req);
    kino::apply_overrides(shot, req, where, {"preset", "seconds"});
    if (shot.contains("seconds")) req.seconds = shot["seconds"].get<double>();
    if (req.prompt.empty()) throw kino::Error(kino::concat(where, ": field 'prompt' is missing"));
    if (!req.seed) req.seed = static_cast<uint64_t>(c.seed >= 0 ? c.seed + static_cast<int64_t>(i) : static_cast<int64_t>(i));
    if (shot.contains("preset")) kino::apply_preset(kino::find_preset(presets, shot["preset"].get<std::string>()), req);
    else if (!c.preset.empty()) kino::apply_preset(kino::find_preset(presets, c.preset), req);
    shots.push_back(resolve_logged(pipeline, req, c.strict));
    if (shots.back().width != shots[0].width || shots.back().height != shots[0].height || shots.back().fps != shots[0].fps)
      throw kino::Error(kino::concat(where, ": every shot needs the same size and fps"));
  }
  const int64_t fade = static_cast<int64_t>(std::llround(crossfade * shots[0].fps));
  kino::Video joined;
  for (size_t i = 0; i < shots.size(); ++i) {
    spdlog::info("shot {}/{}: {}", i + 1, shots.size(), shots[i].prompt);
    kino::StageTimes times;
    kino::Video v = kino::generate_with_progress(pipeline, shots[i], opts.progress, times);
    if (kino::stop_requested()) throw kino::Interrupted();
    if (i == 0) {
      joined = std::move(v);
      continue;
    }
    // Crossfade: the last `fade` frames of the joined video blend into the
    // first `fade` frames of the next shot.
    const int64_t k = std::min({fade, joined.frames - 1, v.frames - 1});
    const size_t fb = static_cast<size_t>(v.width * v.height * 3);
    for (int64_t f = 0; f < k; ++f) {
      const double a = static_cast<double>(f + 1) / static_cast<double>(k + 1);
      uint8_t* dst = joined.rgb.data() + (joined.frames - k + f) * fb;
      const uint8_t* src = v.rgb.data() + f * fb;
      for (size_t p = 0; p < fb; ++p) dst[p] = static_cast<uint8_t>(std::lround((1 - a) * dst[p] + a * src[p]));
    }
    joined.rgb.insert(joined.rgb.end(), v.rgb.begin() + k * fb, v.rgb.end());
    joined.frames += v.frames - k;
  }
  if (opts.label) kino::draw_label(joined);
  kino::GenerationSettings summary = shots[0];
  summary.frames = joined.frames;
  std::string prompts;
  for (const auto& s : shots) prompts += (prompts.empty() ? "" : " | ") + s.prompt;
  summary.prompt = prompts;
  auto tags = kino::provenance_tags(summary, pipeline.model().name);
  nlohmann::json board = nlohmann::json::array();
  for (const auto& s : shots) board.push_back(kino::settings_json(s, pipeline.model().name));
  tags["kino_storyboard"] = nlohmann::json({{"crossfade", crossfade}, {"shots", board}}).dump();
  const auto files = kino::write_video(output, joined, tags, opts.write);
  spdlog::info("wrote {} ({} shots, {} frames)", output, shots.size(), joined.frames);
  if (c.json) print_json({{"path", output}, {"files", files}, {"shots", shots.size()}, {"frames", joined.frames}, {"model", pipeline.model().name}});
  return kExitOk;
}

int run_info(const std::string& file, bool json) {
  const nlohmann::json s = kino::read_provenance(file);
  const auto tags = kino::read_metadata(file);
  if (json) {
    nlohmann::json out = s;
    out["ai_generated"] = tags.count("ai_generated") ? tags.at("ai_generated") == "true" : false;
    if (tags.count("kino_storyboard")) out["storyboard"] = nlohmann::json::parse(tags.at("kino_storyboard"));
    print_json(out);
    return kExitOk;
  }
  std::printf("%s\n", tags.count("comment") ? tags.at("comment").c_str() : "kino video");
  for (auto it = s.begin(); it != s.end(); ++it)
    std::printf("  %-13s %s\n", it.key().c_str(), it.value().is_string() ? it.value().get<std::string>().c_str() : it.value().dump().c_str());
  return kExitOk;
}

int run_presets(bool json) {
  const auto presets = kino::load_presets();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, p] : presets)
      out.push_back({{"name", name}, {"description", p.description}, {"prompt_prefix", p.prompt_prefix},
                     {"prompt_suffix", p.prompt_suffix}, {"negative", p.negative}, {"settings", p.settings}, {"source", p.source}});
    print_json(out);
    return kExitOk;
  }
  for (const auto& [name, p] : presets) std::printf("%-14s %s%s\n", name.c_str(), p.description.c_str(), p.source == "built-in" ? "" : (" [" + p.source + "]").c_str());
  return kExitOk;
}

// The model as kino reads it: components, configs (those given and those
// read from the tensor shapes), experts and defaults.
int run_model(const std::string& path, bool json) {
  const kino::ModelManifest m = kino::load_manifest(path);
  const nlohmann::json j = kino::manifest_json(m);
  if (json) {
    print_json(j);
    return kExitOk;
  }
  std::printf("%s (%s), %s\n", m.name.c_str(), m.family.c_str(), m.path.c_str());
  std::printf("  tokenizer              %s\n", m.tokenizer.c_str());
  for (const char* key : {"text_encoder", "transformer", "transformer_low_noise", "vae"})
    if (j.contains(key))
      std::printf("  %-22s %s\n  %-22s %s\n", key, j[key]["weights"].get<std::string>().c_str(), "",
                  j[key]["config"].dump().c_str());
  if (!m.transformer_low_noise.empty())
    std::printf("  low-noise expert below timestep %g\n", m.boundary_ratio * 1000);
  std::printf("  defaults               %s\n", j["defaults"].dump().c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino: text-to-video from the command line"};
  app.set_version_flag("--version", "kino " KINO_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "More log output");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  Common common;
  std::string prompt, output = "kino.mp4", from;
  auto* gen = app.add_subcommand("generate", "Generate a video from a prompt");
  gen->add_option("prompt", prompt, "What the video shows");
  gen->add_option("-o,--output", output, "Output: .mp4/.mov/.mkv/.y4m, frames/out_%04d.png, or - for stdout")->capture_default_str();
  gen->add_option("--from", from, "Regenerate from the settings stored in a kino video");
  common.add_to(gen);

  BatchOptions batch;
  auto* bat = app.add_subcommand("batch", "Generate one video per line of a prompt file (model loaded once)");
  bat->add_option("file", batch.file, "Prompt file (text or JSON Lines), - for stdin")->required();
  bat->add_option("-d,--output-dir", batch.output_dir, "Output folder")->capture_default_str();
  bat->add_option("--name", batch.name, "File name template: {index} {seed} {slug}")->capture_default_str();
  bat->add_flag("--skip-existing", batch.skip_existing, "Skip items whose output exists (resume)");
  bat->add_option("--shard", batch.shard, "i/n: render only items with index % n == i-1");
  common.add_to(bat);

  std::string board_file, board_out = "storyboard.mp4";
  auto* sb = app.add_subcommand("storyboard", "Render a list of shots into one video");
  sb->add_option("file", board_file, "Storyboard JSON")->required();
  sb->add_option("-o,--output", board_out, "Output file")->capture_default_str();
  common.add_to(sb);

  std::string info_file;
  bool info_json = false;
  auto* info = app.add_subcommand("info", "Show the generation settings stored in a kino video");
  info->add_option("file", info_file)->required();
  info->add_flag("--json", info_json, "As one JSON object");

  bool presets_json = false;
  auto* pre = app.add_subcommand("presets", "List the style presets");
  pre->add_flag("--json", presets_json, "As JSON");

  std::string model_path;
  bool model_json = false;
  auto* mod = app.add_subcommand("model", "Show what kino reads from a model folder or manifest (no weights are loaded)");
  mod->add_option("path", model_path, "A kino.json, a folder holding one, or a Wan release folder")->required();
  mod->add_flag("--json", model_json, "As a complete kino.json (absolute paths) on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "kino: %s (see kino --help)\n", e.what());
    return kExitUsage;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("kino"));
  spdlog::set_pattern("%^[%l]%$ %v");
  spdlog::set_level(quiet ? spdlog::level::err : verbosity > 0 ? spdlog::level::debug : spdlog::level::info);
  kino::set_media_log_level(verbosity > 1);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is reported as a write error
  std::signal(SIGXFSZ, SIG_IGN);  // so is a file-size limit (ulimit -f)

  try {
    if (*gen) return run_generate(common, prompt, output, from);
    if (*bat) return run_batch(common, batch);
    if (*sb) return run_storyboard(common, board_file, board_out);
    if (*info) return run_info(info_file, info_json);
    if (*pre) return run_presets(presets_json);
    if (*mod) return run_model(model_path, model_json);
  } catch (const kino::Interrupted&) {
    spdlog::error("interrupted; no partial output left");
    return kExitInterrupted;
  } catch (const UsageError& e) {
    spdlog::error("{}", e.what());
    return kExitUsage;
  } catch (const kino::Error& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return kExitFailure;
  }
  return kExitUsage;
}
