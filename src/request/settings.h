// The generation settings, described once: the key each has in JSON (prompt
// files, storyboard shots, preset settings, a manifest's defaults, the
// kino_settings a video records), its type, its valid range and the
// command-line option that sets it. Every reader, writer and range check
// goes through this table, so that no two of them can disagree.
// No torch here.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/request.h"

namespace kino {

enum class SettingType { Text, Integer, Number, Seed, Size, Path, PathList };

struct Setting {
  const char* key;       // in JSON
  SettingType type;
  double lo, hi;         // valid values of numbers and integers (Size: of each side)
  bool lo_open;          // lo itself is not valid ("positive")
  const char* flag;      // the command-line option
  const char* defaults_key;  // its key in a manifest's "defaults", nullptr if none
};

const std::vector<Setting>& settings_table();
const Setting& setting(const std::string& key);  // a key of the table

// Whether `value` is in the setting's range.
bool in_range(const Setting& s, double value);
// "1..1000" for integers, "(0, 240]" or "[0, 100]" for numbers.
std::string range_text(const Setting& s);
// Throws "flag must be in RANGE, got VALUE" unless in range.
void check_range(const Setting& s, double value);

// Per-item overrides from a JSON object (JSONL batch lines, storyboard
// shots, preset settings, a video's kino_settings): any key of the table,
// type-checked (ranges are checked when the request is resolved). Unknown
// keys are an error naming them unless listed in `allowed_extra`.
// `only_unset`: fields the request already has are kept.
// Where the file paths of `j` (image, last_image) may point: nowhere (a
// preset, a video's kino_settings: files are named on the command line), or
// to plain relative names inside `folder` (the folder of the prompt file or
// storyboard that names them; no absolute path, no "..", no URL).
struct PathRule {
  bool allowed = false;
  std::string folder;
  static PathRule none() { return {}; }
  static PathRule inside(std::string folder) { return {true, std::move(folder)}; }
};
void apply_overrides(const nlohmann::json& j, GenerationRequest& request, const std::string& where,
                     const std::vector<std::string>& allowed_extra = {}, bool only_unset = false,
                     const PathRule& paths = PathRule::none());

// A manifest's "defaults" object (keys: the table's defaults_key), every
// value range-checked; fields left out keep `base`'s.
GenerationDefaults read_defaults(const nlohmann::json& j, const std::string& where, GenerationDefaults base = {});
nlohmann::json defaults_json(const GenerationDefaults& d);

// The settings a video records (kino_settings), without model and version.
nlohmann::json settings_record(const GenerationSettings& s);

}  // namespace kino
