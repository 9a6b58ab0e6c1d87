// The app layer, torch-free: one precedence rule for the settings of batch
// items and storyboard shots, rendering one request to a file with progress
// and a JSON record, naming outputs, provenance written and read back.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "kino/pipeline.h"
#include "kino/presets.h"
#include "kino/prompt_file.h"
#include "kino/video_writer.h"

namespace kino {

enum class ProgressMode { Auto, None, Bar, Json };

// The settings of one batch item or storyboard shot, from its layers:
// the item's own settings > the command line's > the preset's (the item's
// preset, else the command line's) > the model's defaults (filled when the
// request is resolved). Seeds: the item's own, else the command line's
// seed (0 when not given) + `index`, so that a batch or a storyboard is
// reproducible and its items differ.
GenerationRequest layered_request(const GenerationRequest& item, const std::string& item_preset,
                                  const GenerationRequest& command_line, const std::string& command_line_preset,
                                  const std::map<std::string, Preset>& presets, uint64_t index);

struct RunOptions {
  ProgressMode progress = ProgressMode::Auto;
  bool strict = false;
  bool label = false;  // draw "AI-GENERATED" into the frames
  WriteOptions write;
  const Video* lead_in = nullptr;  // frames written before the generated ones, at its size (kino extend)
};

// Metadata stored in every container: an "AI-generated" comment and the full
// settings as JSON under "kino_settings": the request, the model's name, its
// LoRAs (file name, sha256, strength, expert) and, when drawn, the label.
std::map<std::string, std::string> provenance_tags(const GenerationSettings& s, const ModelManifest& model, bool label = false);
nlohmann::json settings_json(const GenerationSettings& s, const ModelManifest& model, bool label = false);
// The LoRAs a video's settings record that `model` does not have (file
// name, sha256 and strength each), one line per LoRA: what --from cannot
// reproduce without them.
std::vector<std::string> missing_loras(const nlohmann::json& settings, const ModelManifest& model);
// kino_settings of a video file, as JSON; throws if it has none.
nlohmann::json read_provenance(const std::string& path);
// What `kino info` shows: {"settings": kino_settings, "ai_generated",
// "comment", "storyboard" (a storyboard's shots)}; tag names in any case
// (Matroska capitalises them).
nlohmann::json video_info(const std::string& path);
// A request that regenerates the video described by `settings`.
GenerationRequest request_from_settings(const nlohmann::json& settings);

// Calls the pipeline and reports progress in `mode` on stderr; a cancelled
// pipeline throws kino::Interrupted.
Video generate_with_progress(Pipeline& pipeline, const GenerationSettings& s, ProgressMode mode, StageTimes& times);

// Generates and writes one video. Returns the record printed by --json:
// path, files, prompt, seed, model, settings, timings per stage, peak memory.
nlohmann::json render_one(Pipeline& pipeline, const GenerationSettings& s, const std::string& output, const RunOptions& opts);

// Draws "AI-GENERATED" into the bottom-right corner of every frame.
void draw_label(Video& video);

// A file name from a template: {index} (zero-padded to 4), {seed}, {slug}.
std::string expand_name(const std::string& pattern, int64_t index, uint64_t seed, const std::string& prompt);
std::string slugify(const std::string& text, size_t max_len = 48);

// Peak resident memory of this process in MB.
double peak_memory_mb();

}  // namespace kino
