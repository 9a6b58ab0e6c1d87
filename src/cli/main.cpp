// kino command line: a thin layer over the kino library (argument parsing,
// logging, exit codes). The work is in kino/runner.h and kino/pipeline.h.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "kino/atomic_file.h"
#include "kino/batch.h"
#include "kino/error.h"
#include "kino/extend.h"
#include "kino/manifest.h"
#include "kino/presets.h"
#include "kino/runner.h"
#include "kino/storyboard.h"
#include "kino/version.h"
#include "kino/video_writer.h"

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitInterrupted = 130;

// Set by SIGINT/SIGTERM; every pipeline's cancel hook reads it.
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

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

// Options shared by generate, batch and storyboard. Generation settings go
// straight into `settings`, the command line's layer of every request
// (kino::layered_request); unset stays unset.
struct Common {
  std::string model, device = "auto", dtype = "auto", size, progress = "auto", audio, format, preset, offload = "none";
  std::vector<std::string> loras, loras_high_noise, loras_low_noise;
  kino::GenerationRequest settings;
  int threads = 0;
  int64_t vae_tile = 0;
  bool json = false, strict = false, label = false, keep_experts = false;

  void add_to(CLI::App* app) {
    app->add_option("-m,--model", model, "Model folder or kino.json (default: the embedded kino-tiny)");
    app->add_option("--device", device, "auto (cuda when there is one), cpu or cuda[:N]")->capture_default_str();
    app->add_option("--dtype", dtype, "auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16 or float16")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}));
    app->add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app->add_option("--vae-tile", vae_tile, "Decode in overlapping tiles of this many pixels (bounded memory for large frames; 0: off)")
        ->check(CLI::NonNegativeNumber);
    app->add_flag("--keep-experts", keep_experts,
                  "Two-expert models (Wan2.2 A14B) on a GPU: keep both on the device (default: the idle one waits in host "
                  "memory)");
    app->add_option("--offload", offload,
                    "blocks: the transformer's blocks wait in host memory and stream to the GPU one block ahead of use "
                    "(a 14B model in a fraction of its size; none: all on the GPU)")
        ->capture_default_str()
        ->check(CLI::IsMember({"none", "blocks"}));
    app->add_option("--lora", loras, "LoRA file[:strength] merged into every transformer (repeatable, in order; strength 1)");
    app->add_option("--lora-high-noise", loras_high_noise, "LoRA file[:strength] for a two-expert model's high-noise expert only");
    app->add_option("--lora-low-noise", loras_low_noise, "LoRA file[:strength] for a two-expert model's low-noise expert only");
    app->add_flag("--json", json, "Print one JSON object per finished video on stdout");
    app->add_option("--progress", progress, "auto (a bar on a terminal), bar, json (events on stderr) or none")
        ->check(CLI::IsMember({"auto", "bar", "json", "none"}));
    app->add_flag("--strict", strict, "Refuse sizes and frame counts the model cannot take instead of rounding them");
    app->add_flag("--label", label, "Draw an AI-GENERATED label into the frames");
    kino::GenerationRequest& r = settings;
    auto text = [&](const char* flag, std::optional<std::string>& field, const char* help) {
      return app->add_option_function<std::string>(flag, [&field](const std::string& v) { field = v; }, help);
    };
    text("-n,--negative", r.negative, "Negative prompt (default: the model's)");
    app->add_option_function<uint64_t>("-s,--seed", [&r](const uint64_t& v) { r.seed = v; },
                                       "Random seed (default: random, reported; batches and storyboards: the first item's)")
        ->check(CLI::NonNegativeNumber);
    app->add_option_function<int64_t>("--steps", [&r](const int64_t& v) { r.steps = v; }, "Sampling steps")->check(CLI::Range(1, 1000));
    app->add_option_function<double>("--cfg", [&r](const double& v) { r.cfg = v; },
                                     "Classifier-free guidance scale (two-expert models: both experts)")
        ->check(CLI::NonNegativeNumber);
    app->add_option_function<double>("--cfg-low-noise", [&r](const double& v) { r.cfg_low_noise = v; },
                                     "Guidance scale of a two-expert model's low-noise expert")
        ->check(CLI::NonNegativeNumber);
    app->add_option_function<double>("--shift", [&r](const double& v) { r.shift = v; }, "Sigma shift of the schedule")
        ->check(CLI::PositiveNumber);
    text("--sampler", r.sampler, "unipc, dpm++, euler, or distill (step-distilled models: with --cfg 1)")
        ->check(CLI::IsMember({"unipc", "dpm++", "euler", "distill"}));
    text("--cache", r.cache,
         "Step caching: teacache[:THRESH][,ret_steps], magcache[:THRESH][,k=N][,retention=R], easycache[:THRESH] or none "
         "(thresholds default to the reference scripts': 0.2, 0.12, 0.05)");
    text("--context-windows", r.context_windows,
         "Clips longer than the model's trained length in overlapping windows: auto (default: on when longer), none, or "
         "static|uniform|looped[:LENGTH][,overlap=N][,fuse=pyramid|flat|linear][,freenoise] (frames)");
    app->add_option("--size", size, "WxH (multiples of 16 for Wan models)");
    text("--aspect", r.aspect, "16:9, 9:16, 1:1, ...: the model's nearest size of that shape");
    app->add_option_function<int64_t>("--frames", [&r](const int64_t& v) { r.frames = v; }, "Frame count (4k+1)")
        ->check(CLI::PositiveNumber);
    app->add_option_function<double>("--seconds", [&r](const double& v) { r.seconds = v; },
                                     "Duration; frames = seconds x fps, rounded to a valid count")
        ->check(CLI::PositiveNumber);
    app->add_option_function<double>("--fps", [&r](const double& v) { r.fps = v; }, "Frames per second of the output")
        ->check(CLI::PositiveNumber);
    app->add_option("--preset", preset, "Style preset (kino presets lists them)");
    text("--image", r.image, "First frame to animate (image-to-video models; the size follows the image)");
    text("--last-image", r.last_image, "Last frame (first-last-frame models)");
    text("--video", r.video,
         "Source or control video (VACE models: the output follows its frames and size): a video file or a PNG sequence "
         "as a pattern, frames/%04d.png");
    text("--mask", r.mask, "Mask video for --video, the same size and length: white = generate, black = keep");
    app->add_option_function<std::vector<std::string>>(
        "--reference", [&r](const std::vector<std::string>& v) { r.references = v; },
        "Subject image (VACE models; repeatable): fitted onto a white frame and kept in the video");
    app->add_option_function<double>("--context-scale", [&r](const double& v) { r.context_scale = v; },
                                     "Scale of the VACE hints (default 1)");
    app->add_option_function<double>("--strength", [&r](const double& v) { r.strength = v; },
                                     "Video-to-video with --video on any non-VACE model: how much of the video is redrawn "
                                     "(0: the video as it is, 1: text-to-video; the last strength x steps run)");
    app->add_option_function<int64_t>("--keep-frames", [&r](const int64_t& v) { r.keep_frames = v; },
                                      "VACE extension: keep the last N frames of --video and generate the rest of --frames "
                                      "after them")
        ->check(CLI::PositiveNumber);
    app->add_option_function<double>("--video-fps", [&r](const double& v) { r.video_fps = v; },
                                     "Frame rate a PNG sequence given to --video is read at (default 16)")
        ->check(CLI::PositiveNumber);
    app->add_option("--audio", audio, "Audio file to mux (AAC), cut or padded to the video");
    app->add_option("--format", format, "Output format for -o -: mp4 (fragmented) or y4m")->check(CLI::IsMember({"mp4", "y4m"}));
  }

  // The command line's settings, --size read.
  kino::GenerationRequest request() const {
    kino::GenerationRequest r = settings;
    if (!size.empty()) {
      int64_t w = 0, h = 0;
      if (!kino::parse_size(size, w, h)) throw UsageError(kino::concat("--size must look like WIDTHxHEIGHT, got '", size, "'"));
      r.width = w;
      r.height = h;
    }
    return r;
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

  // The --preset named, looked up now: an unknown name is a usage error.
  kino::Preset chosen_preset() const {
    const auto presets = kino::load_presets();
    if (!presets.count(preset)) throw UsageError(kino::concat("unknown preset '", preset, "' (kino presets lists them)"));
    return presets.at(preset);
  }

  // The model with the command line's LoRAs after its own; what each
  // patches is logged, and the keys that matched nothing (names with -v).
  kino::ModelManifest manifest() const {
    kino::ModelManifest m = kino::load_manifest(model.empty() ? default_model() : model);
    spdlog::debug("model {} ({} {}) from {}", m.name, m.family, m.task, m.path);
    // The preset's LoRAs, then the command line's.
    std::vector<kino::LoraSpec> specs;
    if (!preset.empty()) specs = chosen_preset().loras;
    for (const auto& [list, expert] : {std::pair{&loras, ""}, {&loras_high_noise, "high_noise"}, {&loras_low_noise, "low_noise"}})
      for (const auto& arg : *list) specs.push_back(kino::parse_lora_spec(arg, expert));
    kino::add_loras(m, specs);
    for (const auto& r : kino::lora_report(m)) {
      if (r.unmatched.empty()) {
        spdlog::info("{}", r.summary);
        continue;
      }
      spdlog::warn("{} (-v lists them)", r.summary);
      for (const auto& key : r.unmatched) spdlog::debug("  not loaded: {}", key);
    }
    return m;
  }

  kino::Pipeline load(const kino::ModelManifest& m) const {
    kino::RuntimeOptions o;
    o.device = device;
    o.dtype = dtype;
    o.threads = threads;
    o.vae_tile = vae_tile;
    o.keep_experts_on_device = keep_experts;
    o.offload_blocks = offload == "blocks";
    kino::Pipeline p(m, o);
    for (const auto& w : p.load_warnings()) spdlog::warn("{}", w);
    p.set_cancel_hook([] { return g_stop.load(); });
    return p;
  }
};

// One JSON record per line on stdout; on stderr when stdout carries the
// video itself (-o -).
void print_json(const nlohmann::json& j, bool to_stderr = false) {
  std::FILE* out = to_stderr ? stderr : stdout;
  std::fprintf(out, "%s\n", j.dump().c_str());
  std::fflush(out);
}

// Text from a video's metadata, safe for a terminal: control characters
// (escape sequences included) shown as \uXXXX, as JSON escapes them.
std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Edit distance of two short words (options, subcommands).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean X?)" for a word close to one of `known` (a prefix of it,
// or at most 2 edits away), "" otherwise.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = 3;
  for (const auto& k : known) {
    const size_t d = k.rfind(word, 0) == 0 && word.size() >= 3 ? 1 : edit_distance(word, k);
    if (d < best_distance) best_distance = d, best = k;
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// For a usage error: the first word of the command line that is neither a
// subcommand (as the first word) nor an option of the app or the
// subcommand, with the nearest known one; "" when none is close.
std::string suggestion(CLI::App& app, int argc, char** argv) {
  if (argc < 2) return "";
  const auto subs = app.get_subcommands([](const CLI::App*) { return true; });
  std::vector<std::string> names;
  const CLI::App* sub = nullptr;
  for (const CLI::App* s : subs) {
    names.push_back(s->get_name());
    if (s->get_name() == argv[1]) sub = s;
  }
  if (!sub && argv[1][0] != '-') return did_you_mean(argv[1], names);
  std::vector<std::string> options;
  for (const CLI::App* a : {static_cast<const CLI::App*>(&app), sub})
    if (a)
      for (const CLI::Option* o : a->get_options())
        for (const auto& n : o->get_lnames()) options.push_back("--" + n);
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(options.begin(), options.end(), name) == options.end()) return did_you_mean(name, options);
  }
  return "";
}

// `kino remix`'s strength on models without VACE blocks (diffusers'
// WanVideoToVideoPipeline default).
constexpr double kRemixStrength = 0.8;

// What `kino remix` and `kino extend` start from (generate: nothing).
struct SourceVideo {
  enum class Use { None, Remix, Extend } use = Use::None;
  std::string path;
};

// A private folder under the system's temporary one, removed with everything in it.
struct TempFolder {
  std::string path;
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "kino-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw kino::Error("cannot create a temporary folder");
    path = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
};

int run_generate(const Common& c, const std::string& prompt, const std::string& output, const std::string& from,
                 const SourceVideo& source = {}) {
  // The command line over the video's recorded settings, then the preset.
  kino::GenerationRequest req = c.request();
  if (!prompt.empty()) req.prompt = prompt;
  nlohmann::json recorded;
  if (!from.empty()) {
    recorded = kino::read_provenance(from);
    kino::fill_unset(req, kino::request_from_settings(recorded));
    // Its first and last frame are files on the recording machine: never
    // opened on the video's word.
    for (const auto& [key, what, option, given] :
         {std::tuple{"image", "the image", "--image", req.image.has_value()},
          std::tuple{"last_image", "the last image", "--last-image", req.last_image.has_value()},
          std::tuple{"video", "the video", "--video", req.video.has_value()},
          std::tuple{"mask", "the mask", "--mask", req.mask.has_value()},
          std::tuple{"references", "the references", "--reference", req.references.has_value()}})
      if (recorded.contains(key) && !given)
        spdlog::warn("{} was made from {} {}; give it with {} to reproduce", from, what,
                     printable(recorded[key].is_string() ? recorded[key].get<std::string>() : recorded[key].dump()), option);
    spdlog::info("settings from {}", from);
  }
  if (req.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
    throw UsageError("the prompt is empty (give a PROMPT argument or --from FILE)");
  if (!c.preset.empty()) kino::apply_preset(c.chosen_preset(), req);
  if (output.empty()) throw kino::Error("--output is empty");
  if (output != "-") kino::check_output_folder(kino::is_frame_pattern(output) ? kino::frame_path(output, 0) : output);
  kino::check_write_options(output, c.run_options().write);  // --audio's file and container, before the model loads
  const kino::ModelManifest manifest = c.manifest();
  std::optional<TempFolder> temp;
  kino::ExtensionPlan extension;
  if (source.use == SourceVideo::Use::Remix) {
    // A VACE model reads the video as its control video; any other redraws it (SDEdit).
    req.video = source.path;
    if (kino::describe_model(manifest).takes("video")) {
      spdlog::info("remix: {} as the VACE control video", source.path);
    } else {
      if (!req.strength) req.strength = kRemixStrength;
      spdlog::info("remix: {} redrawn at strength {} (video-to-video)", source.path, *req.strength);
    }
  } else if (source.use == SourceVideo::Use::Extend) {
    temp.emplace();
    extension = kino::plan_extension(kino::describe_model(manifest), manifest.defaults, source.path, req, temp->path);
    spdlog::info("extend: {}", extension.how);
  }
  // The recorded model is a name, not a path: --from runs only on the model
  // it names (another would not reproduce the video).
  if (recorded.contains("model") && recorded["model"].is_string() && recorded["model"].get<std::string>() != manifest.name)
    throw kino::Error(kino::concat(from, " was made with the model '", printable(recorded["model"].get<std::string>()), "'; this one is '",
                                   printable(manifest.name), "' (give that model with --model to reproduce it)"));
  // A recorded LoRA is a file on the recording machine: it is never opened
  // from the video's word, only named.
  for (const auto& lora : kino::missing_loras(recorded, manifest))
    spdlog::warn("{} was made with {}; this run is without it (give it with --lora to reproduce)", from, lora);
  kino::resolve_request(req, manifest, c.strict);  // a bad request fails before the model loads
  kino::Pipeline pipeline = c.load(manifest);
  const kino::GenerationSettings s = pipeline.resolve(req, c.strict);
  for (const auto& w : s.warnings) spdlog::warn("{}", w);
  const std::string cfg = s.cfg_low_noise == s.cfg ? kino::concat(s.cfg) : kino::concat(s.cfg, " (low noise ", s.cfg_low_noise, ")");
  spdlog::info("{}x{}, {} frames, {} steps of {}, cfg {}, seed {}", s.width, s.height, s.frames, s.steps, s.sampler, cfg, s.seed);
  if (s.context_windows != "none") spdlog::info("context windows {} (frames)", s.context_windows);
  kino::RunOptions run = c.run_options();
  // The label a recorded video carries is drawn again.
  if (recorded.contains("label") && recorded["label"].is_boolean() && recorded["label"].get<bool>()) run.label = true;
  // An extension is written after the source's frames that precede it.
  kino::Video lead_in;
  if (source.use == SourceVideo::Use::Extend) {
    lead_in = kino::lead_in_frames(source.path, extension.lead_in, s.width, s.height, s.fps);
    run.lead_in = &lead_in;
  }
  const nlohmann::json record = kino::render_one(pipeline, s, output, run);
  const auto& t = record["timings"];
  spdlog::info("wrote {}; text {:.2f}s, denoise {:.2f}s, decode {:.2f}s", output == "-" ? "<stdout>" : output,
               t["text_s"].get<double>(), t["denoise_s"].get<double>(), t["decode_s"].get<double>());
  if (!s.cache.empty())
    spdlog::info("{}: {} of {} transformer passes served from the cache", s.cache, record["reused_passes"].get<int64_t>(),
                 record["transformer_passes"].get<int64_t>());
  if (c.json) print_json(record, output == "-");
  return kExitOk;
}

struct BatchArgs {
  std::string file, shard;
  kino::BatchOptions options;
};

int run_batch(const Common& c, BatchArgs b) {
  kino::BatchOptions& o = b.options;
  if (!b.shard.empty()) kino::parse_shard(b.shard, o.shard, o.shards);
  const std::vector<kino::BatchItem> items = kino::read_prompt_file(b.file);
  // The output folder is made when missing (mkdir -p), once the prompt file reads.
  std::error_code ec;
  if (!fs::is_directory(o.output_dir, ec) && (!fs::create_directories(o.output_dir, ec) || ec))
    throw kino::Error(kino::concat("cannot create the output folder ", o.output_dir, ": ", ec.message()));
  const auto presets = kino::load_presets();
  o.command_line = c.request();
  o.preset = c.preset;
  o.run = c.run_options();
  kino::Pipeline pipeline = c.load(c.manifest());  // once for the whole batch
  const kino::BatchSummary sum = kino::run_batch(pipeline, items, presets, o, [&](const nlohmann::json& record) {
    if (c.json) print_json(record);
  });
  spdlog::info("batch: {} done, {} skipped, {} failed{} in {:.1f}s", sum.done, sum.skipped, sum.failed,
               sum.interrupted ? ", interrupted" : "", sum.seconds);
  if (c.json) print_json(sum.to_json());
  if (sum.interrupted) return kExitInterrupted;
  return sum.failed ? kExitFailure : kExitOk;
}

int run_storyboard(const Common& c, const std::string& file, const std::string& output) {
  const kino::Storyboard board = kino::read_storyboard(file);
  const auto presets = kino::load_presets();
  kino::StoryboardOptions o;
  o.command_line = c.request();
  o.preset = c.preset;
  o.run = c.run_options();
  kino::Pipeline pipeline = c.load(c.manifest());
  const nlohmann::json record = kino::render_storyboard(pipeline, board, file, presets, output, o);
  if (c.json) print_json(record);
  return kExitOk;
}

int run_info(const std::string& file, bool json) {
  const nlohmann::json info = kino::video_info(file);
  if (json) {
    nlohmann::json out = info["settings"];
    out["ai_generated"] = info["ai_generated"];
    if (info.contains("storyboard")) out["storyboard"] = info["storyboard"];
    print_json(out);
    return kExitOk;
  }
  std::printf("%s\n", printable(info.value("comment", "kino video")).c_str());
  const nlohmann::json& s = info["settings"];
  for (auto it = s.begin(); it != s.end(); ++it)
    std::printf("  %-13s %s\n", printable(it.key()).c_str(),
                printable(it.value().is_string() ? it.value().get<std::string>() : it.value().dump()).c_str());
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

// The model as kino reads it: family and task (refused when kino has none
// such), what it accepts, components, configs (those given and those read
// from the tensor shapes), experts and defaults.
int run_model(const std::string& path, bool json) {
  const kino::ModelManifest m = kino::load_manifest(path);
  const kino::ModelDescription d = kino::describe_model(m);
  const nlohmann::json j = kino::manifest_json(m);
  if (json) {
    print_json(j);
    return kExitOk;
  }
  std::printf("%s (%s %s), %s\n", m.name.c_str(), m.family.c_str(), m.task.c_str(), m.path.c_str());
  std::string inputs = "a prompt";
  for (const auto& in : d.inputs) inputs += ", an " + in;
  std::printf("  takes                  %s; %lldk+1 frames, sizes in multiples of %lld\n", inputs.c_str(),
              static_cast<long long>(d.frame_multiple), static_cast<long long>(d.size_multiple));
  std::printf("  tokenizer              %s\n", m.tokenizer.c_str());
  const std::pair<const char*, const char*> components[] = {{"text_encoder", "text encoder"},
                                                            {"image_encoder", "image encoder (CLIP)"},
                                                            {"transformer", "transformer"},
                                                            {"transformer_low_noise", "low-noise expert"},
                                                            {"vae", "vae"}};
  for (const auto& [key, label] : components) {
    if (!j.contains(key)) continue;
    const std::string weights = j[key]["weights"].get<std::string>();
    const std::string names = kino::weight_layout(m, key), types = kino::weight_types(m, key);
    const std::string layout = names.empty() ? "" : " (" + names + " names), " + types;
    std::printf("  %-22s %s%s\n  %-22s %s\n", label, weights.c_str(), layout.c_str(), "", j[key]["config"].dump().c_str());
  }
  if (!m.transformer_low_noise.empty())
    std::printf("  low-noise expert below timestep %g\n", m.boundary_ratio * 1000);
  for (const auto& r : kino::lora_report(m)) std::printf("  %-22s %s\n", "lora", r.summary.c_str());
  std::printf("  defaults               %s\n", j["defaults"].dump().c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kino: text-to-video from the command line"};
  app.set_version_flag("--version", std::string("kino ") + kino::version());
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q after the subcommand too
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

  std::string remix_source;
  auto* remix = app.add_subcommand("remix", "Change a video by a prompt (VACE models: as a control video; others: video-to-video)");
  remix->add_option("video", remix_source, "The video to change: a video file or a PNG sequence (frames/%04d.png)")->required();
  remix->add_option("prompt", prompt, "What the remixed video shows")->required();
  remix->add_option("-o,--output", output, "Output file")->capture_default_str();
  common.add_to(remix);

  std::string extend_source;
  auto* extend = app.add_subcommand(
      "extend", "Continue a video (VACE models: its last frames kept under an extension mask; image-to-video models: from its "
                "last frame); writes the video followed by the continuation");
  extend->add_option("video", extend_source, "The video to continue: a video file or a PNG sequence (frames/%04d.png)")->required();
  extend->add_option("prompt", prompt, "What happens next")->required();
  extend->add_option("-o,--output", output, "Output file")->capture_default_str();
  common.add_to(extend);

  BatchArgs batch;
  auto* bat = app.add_subcommand("batch", "Generate one video per line of a prompt file (model loaded once)");
  bat->add_option("file", batch.file, "Prompt file (text or JSON Lines), - for stdin")->required();
  bat->add_option("-d,--output-dir", batch.options.output_dir, "Output folder")->capture_default_str();
  bat->add_option("--name", batch.options.name, "File name template: {index} {seed} {slug}")->capture_default_str();
  bat->add_flag("--skip-existing", batch.options.skip_existing, "Skip items whose output exists (resume)");
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
    std::fprintf(stderr, "kino: %s%s (see kino --help)\n", e.what(), suggestion(app, argc, argv).c_str());
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
    if (*remix) return run_generate(common, prompt, output, "", {SourceVideo::Use::Remix, remix_source});
    if (*extend) return run_generate(common, prompt, output, "", {SourceVideo::Use::Extend, extend_source});
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
