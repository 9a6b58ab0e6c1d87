#include "kino/runner.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "adapters/lora_plan.h"
#include "kino/error.h"
#include "kino/version.h"
#include "request/settings.h"
#include "util/json_fields.h"
#include "util/json_parse.h"

namespace kino {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 5x7 glyphs, one byte per row (low 5 bits, MSB left), for the label text.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'G', {0x0F, 0x10, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'N', {0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
};

}  // namespace

double peak_memory_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

GenerationRequest layered_request(const GenerationRequest& item, const std::string& item_preset,
                                  const GenerationRequest& command_line, const std::string& command_line_preset,
                                  const std::map<std::string, Preset>& presets, uint64_t index) {
  GenerationRequest r = item;
  if (!r.seed) r.seed = command_line.seed.value_or(0) + index;
  fill_unset(r, command_line);
  const std::string& preset = item_preset.empty() ? command_line_preset : item_preset;
  if (!preset.empty()) {
    const Preset& p = find_preset(presets, preset);
    // Its LoRAs were merged when the model loaded, for the command line's preset only.
    if (!p.loras.empty() && preset != command_line_preset)
      throw Error(concat("preset '", preset, "' brings LoRAs, which merge when the model loads: give it as the run's --preset"));
    apply_preset(p, r);
  }
  return r;
}

namespace {

// A LoRA as a video records it: the file's name (not its folder), its
// digest, the strength and the expert.
nlohmann::json lora_record(const LoraSpec& spec, const std::string& sha256) {
  nlohmann::json j = {{"file", std::filesystem::path(spec.path).filename().string()}, {"sha256", sha256}, {"strength", spec.strength}};
  if (!spec.expert.empty()) j["expert"] = spec.expert;
  return j;
}

nlohmann::json lora_records(const ModelManifest& m) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& spec : m.lora_specs) {
    auto plan = std::find_if(m.loras.begin(), m.loras.end(), [&](const auto& p) { return p->spec.path == spec.path; });
    out.push_back(lora_record(spec, plan == m.loras.end() ? "" : (*plan)->sha256));
  }
  return out;
}

}  // namespace

nlohmann::json settings_json(const GenerationSettings& s, const ModelManifest& model, bool label) {
  nlohmann::json j = settings_record(s);
  j["model"] = model.name;
  if (label) j["label"] = true;
  if (!model.lora_specs.empty()) j["loras"] = lora_records(model);
  j["kino_version"] = version();
  return j;
}

std::vector<std::string> missing_loras(const nlohmann::json& settings, const ModelManifest& model) {
  std::vector<std::string> out;
  if (!settings.is_object() || !settings.contains("loras") || !settings["loras"].is_array()) return out;
  const nlohmann::json have = lora_records(model);
  for (const auto& l : settings["loras"]) {
    if (!l.is_object()) continue;
    const std::string sha = field_or<std::string>(l, "sha256", "", "kino_settings loras");
    const bool found = std::any_of(have.begin(), have.end(), [&](const nlohmann::json& h) {
      return h["sha256"] == sha && h["strength"] == l.value("strength", 1.0) && h.value("expert", "") == l.value("expert", "");
    });
    if (!found)
      out.push_back(concat("LoRA ", field_or<std::string>(l, "file", "?", "kino_settings loras"), " (sha256 ", sha.substr(0, 12),
                           "…) at strength ", l.value("strength", 1.0)));
  }
  return out;
}

std::map<std::string, std::string> provenance_tags(const GenerationSettings& s, const ModelManifest& model, bool label) {
  return {{"title", s.prompt},
          {"comment", concat("AI-generated video (kino ", version(), ", model ", model.name, ")")},
          {"ai_generated", "true"},
          {"kino_settings", settings_json(s, model, label).dump()},
          {"encoder", concat("kino ", version())}};
}

namespace {

// A container tag by name, whatever its case (Matroska stores KINO_SETTINGS).
const std::string* find_tag(const std::map<std::string, std::string>& tags, const std::string& name) {
  for (const auto& [key, value] : tags) {
    std::string k = key;
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (k == name) return &value;
  }
  return nullptr;
}

nlohmann::json settings_of(const std::map<std::string, std::string>& tags, const std::string& path) {
  const std::string* text = find_tag(tags, "kino_settings");
  if (!text) throw Error(concat(path, ": no kino generation settings in its metadata"));
  nlohmann::json j = parse_json(*text, path + " kino_settings");
  if (!j.is_object()) throw Error(concat(path, ": its kino_settings metadata is not a JSON object"));
  return j;
}

}  // namespace

nlohmann::json read_provenance(const std::string& path) { return settings_of(read_metadata(path), path); }

nlohmann::json video_info(const std::string& path) {
  const auto tags = read_metadata(path);
  nlohmann::json out = {{"settings", settings_of(tags, path)}};
  const std::string* ai = find_tag(tags, "ai_generated");
  out["ai_generated"] = ai && *ai == "true";
  if (const std::string* comment = find_tag(tags, "comment")) out["comment"] = *comment;
  if (const std::string* board = find_tag(tags, "kino_storyboard")) out["storyboard"] = parse_json(*board, path + " kino_storyboard");
  return out;
}

GenerationRequest request_from_settings(const nlohmann::json& j) {
  GenerationRequest r;
  // The files a video names (its first and last frame, a source video, a
  // mask, references) are not opened on its word: they are named again on
  // the command line.
  nlohmann::json settings = j;
  for (const Setting& s : settings_table())
    if (s.type == SettingType::Path || s.type == SettingType::PathList) settings.erase(s.key);
  apply_overrides(settings, r, "kino_settings", {"model", "loras", "kino_version", "label"});
  return r;
}

Video generate_with_progress(Pipeline& pipeline, const GenerationSettings& s, ProgressMode mode, StageTimes& times) {
  if (mode == ProgressMode::Auto) mode = isatty(STDERR_FILENO) ? ProgressMode::Bar : ProgressMode::None;
  const auto t0 = std::chrono::steady_clock::now();
  auto denoise_start = t0;
  bool bar_open = false;
  auto callback = [&](const Progress& p) {
    if (p.stage == "denoise" && p.step == 0) denoise_start = std::chrono::steady_clock::now();
    const double el = seconds_since(denoise_start);
    const double rate = p.step > 0 && el > 0 ? p.step / el : 0;
    const double eta = rate > 0 ? (p.steps - p.step) / rate : 0;
    if (mode == ProgressMode::Json) {
      nlohmann::json e = {{"event", "progress"}, {"stage", p.stage}, {"elapsed_s", seconds_since(t0)}};
      if (p.steps) e.update({{"step", p.step}, {"steps", p.steps}, {"it_per_s", rate}, {"eta_s", eta}});
      std::fprintf(stderr, "%s\n", e.dump().c_str());
    } else if (mode == ProgressMode::Bar) {
      if (p.stage == "denoise" && p.steps) {
        const int width = 24, done = static_cast<int>(width * p.step / p.steps);
        std::fprintf(stderr, "\r\033[Kdenoise [%s%s] %lld/%lld  %.2f it/s  ETA %.0fs", std::string(done, '#').c_str(),
                     std::string(width - done, '.').c_str(), static_cast<long long>(p.step), static_cast<long long>(p.steps), rate, eta);
        bar_open = true;
      } else {
        std::fprintf(stderr, "%s\r\033[K%s...", bar_open ? "\n" : "", p.stage.c_str());
        bar_open = true;
      }
    }
  };
  Video v;
  try {
    v = pipeline.generate(s, callback, &times);
  } catch (...) {
    if (bar_open) std::fprintf(stderr, "\n");
    throw;
  }
  if (bar_open) std::fprintf(stderr, "\r\033[K");
  // A stop asked for during the last step ends here, before anything is written.
  if (pipeline.cancelled()) throw Interrupted();
  return v;
}

nlohmann::json render_one(Pipeline& pipeline, const GenerationSettings& s, const std::string& output, const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  StageTimes times;
  Video video = generate_with_progress(pipeline, s, opts.progress, times);
  if (opts.label) draw_label(video);
  if (opts.lead_in && opts.lead_in->frames > 0) {
    const Video& lead = *opts.lead_in;
    if (lead.width != video.width || lead.height != video.height)
      throw Error(concat("the lead-in frames are ", lead.width, "x", lead.height, ", the video ", video.width, "x", video.height));
    video.rgb.insert(video.rgb.begin(), lead.rgb.begin(), lead.rgb.end());
    video.frames += lead.frames;
  }
  const auto tw = std::chrono::steady_clock::now();
  const auto files = write_video(output, video, provenance_tags(s, pipeline.model(), opts.label), opts.write);
  const double write_s = seconds_since(tw);
  // --progress json ends with the files written.
  if (opts.progress == ProgressMode::Json)
    std::fprintf(stderr, "%s\n", nlohmann::json({{"event", "done"}, {"path", output}, {"files", files}, {"elapsed_s", seconds_since(t0)}}).dump().c_str());
  return {{"path", output},
          {"files", files},
          {"prompt", s.prompt},
          {"seed", s.seed},
          {"model", pipeline.model().name},
          {"settings", settings_json(s, pipeline.model(), opts.label)},
          {"warnings", s.warnings},
          {"timings", {{"text_s", times.text_s}, {"denoise_s", times.denoise_s}, {"decode_s", times.decode_s},
                       {"write_s", write_s}, {"total_s", seconds_since(t0)}}},
          {"transformer_passes", times.transformer_passes},
          {"reused_passes", times.reused_passes},
          {"context_windows", times.context_windows},
          {"peak_memory_mb", peak_memory_mb()}};
}

void draw_label(Video& v) {
  const std::string text = "AI-GENERATED";
  const int64_t scale = std::max<int64_t>(1, v.height / 120);
  const int64_t tw = static_cast<int64_t>(text.size()) * 6 * scale, th = 7 * scale;
  const int64_t x0 = v.width - tw - 2 * scale, y0 = v.height - th - 2 * scale;
  if (x0 < 0 || y0 < 0) return;  // too small to carry a label
  for (int64_t f = 0; f < v.frames; ++f) {
    uint8_t* frame = v.rgb.data() + f * v.width * v.height * 3;
    // A dark box, then white glyphs.
    for (int64_t y = y0 - scale; y < y0 + th + scale; ++y)
      for (int64_t x = x0 - scale; x < x0 + tw; ++x)
        for (int c = 0; c < 3; ++c) frame[(y * v.width + x) * 3 + c] /= 3;
    for (size_t i = 0; i < text.size(); ++i) {
      const Glyph* g = nullptr;
      for (const auto& k : kFont)
        if (k.c == text[i]) g = &k;
      if (!g) continue;
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col)
          if (g->rows[r] & (0x10 >> col))
            for (int64_t dy = 0; dy < scale; ++dy)
              for (int64_t dx = 0; dx < scale; ++dx) {
                const int64_t x = x0 + (static_cast<int64_t>(i) * 6 + col) * scale + dx, y = y0 + r * scale + dy;
                for (int c = 0; c < 3; ++c) frame[(y * v.width + x) * 3 + c] = 255;
              }
    }
  }
}

std::string slugify(const std::string& text, size_t max_len) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c)) {
      out += static_cast<char>(std::tolower(c));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= max_len) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "video" : out;
}

std::string expand_name(const std::string& pattern, int64_t index, uint64_t seed, const std::string& prompt) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    auto take = [&](const char* key, const std::string& value) {
      const size_t n = std::char_traits<char>::length(key);
      if (pattern.compare(i, n, key) != 0) return false;
      out += value;
      i += n;
      return true;
    };
    char idx[32];
    std::snprintf(idx, sizeof idx, "%04lld", static_cast<long long>(index));
    if (take("{index}", idx) || take("{seed}", std::to_string(seed)) || take("{slug}", slugify(prompt))) continue;
    out += pattern[i++];
  }
  if (out.find('/') != std::string::npos || out == "." || out == "..")
    throw Error(concat("output name '", out, "' must be a plain file name"));
  return out;
}

}  // namespace kino
