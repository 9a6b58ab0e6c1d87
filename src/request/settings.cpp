#include "request/settings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <variant>

#include "kino/error.h"
#include "util/json_fields.h"

namespace kino {

namespace {

using Req = GenerationRequest;
using Set = GenerationSettings;
using Def = GenerationDefaults;
using RequestField =
    std::variant<std::monostate, std::string Req::*, std::optional<std::string> Req::*, std::optional<int64_t> Req::*,
                 std::optional<uint64_t> Req::*, std::optional<double> Req::*, std::optional<std::vector<std::string>> Req::*>;
using SettingsField =
    std::variant<std::monostate, std::string Set::*, int64_t Set::*, uint64_t Set::*, double Set::*, std::vector<std::string> Set::*>;
using DefaultsField = std::variant<std::monostate, std::string Def::*, int64_t Def::*, double Def::*, std::optional<double> Def::*>;

struct Row {
  Setting meta;
  RequestField request;
  SettingsField settings;
  DefaultsField defaults;
};

constexpr double kMaxSeed = 18446744073709551615.0;
constexpr size_t kMaxReferences = 16;  // subject images of one video
const std::monostate none;

// The table. Ranges are those the pipeline can run: 4097 = 4 * 1024 + 1
// frames, 8192 pixels a side, guidance up to 100.
const std::vector<Row>& rows() {
  static const std::vector<Row> table = {
      {{"prompt", SettingType::Text, 0, 0, false, "PROMPT", nullptr}, &Req::prompt, &Set::prompt, none},
      {{"negative", SettingType::Text, 0, 0, false, "--negative", "negative_prompt"}, &Req::negative, &Set::negative,
       &Def::negative_prompt},
      {{"seed", SettingType::Seed, 0, kMaxSeed, false, "--seed", nullptr}, &Req::seed, &Set::seed, none},
      {{"steps", SettingType::Integer, 1, 1000, false, "--steps", "steps"}, &Req::steps, &Set::steps, &Def::steps},
      {{"cfg", SettingType::Number, 0, 100, false, "--cfg", "cfg"}, &Req::cfg, &Set::cfg, &Def::cfg},
      {{"cfg_low_noise", SettingType::Number, 0, 100, false, "--cfg-low-noise", "cfg_low_noise"}, &Req::cfg_low_noise,
       &Set::cfg_low_noise, &Def::cfg_low_noise},
      {{"shift", SettingType::Number, 0, 100, true, "--shift", "shift"}, &Req::shift, &Set::shift, &Def::shift},
      {{"sampler", SettingType::Text, 0, 0, false, "--sampler", "sampler"}, &Req::sampler, &Set::sampler, &Def::sampler},
      {{"cache", SettingType::Text, 0, 0, false, "--cache", "cache"}, &Req::cache, &Set::cache, &Def::cache},
      {{"context_windows", SettingType::Text, 0, 0, false, "--context-windows", nullptr}, &Req::context_windows, &Set::context_windows, none},
      {{"size", SettingType::Size, 1, 8192, false, "--size", nullptr}, none, none, none},
      {{"width", SettingType::Integer, 1, 8192, false, "width", "width"}, &Req::width, &Set::width, &Def::width},
      {{"height", SettingType::Integer, 1, 8192, false, "height", "height"}, &Req::height, &Set::height, &Def::height},
      {{"aspect", SettingType::Text, 0, 0, false, "--aspect", nullptr}, &Req::aspect, none, none},
      {{"frames", SettingType::Integer, 1, 4097, false, "--frames", "frames"}, &Req::frames, &Set::frames, &Def::frames},
      {{"seconds", SettingType::Number, 0, 3600, true, "--seconds", nullptr}, &Req::seconds, none, none},
      {{"fps", SettingType::Number, 0, 240, true, "--fps", "fps"}, &Req::fps, &Set::fps, &Def::fps},
      {{"image", SettingType::Path, 0, 0, false, "--image", nullptr}, &Req::image, &Set::image, none},
      {{"last_image", SettingType::Path, 0, 0, false, "--last-image", nullptr}, &Req::last_image, &Set::last_image, none},
      {{"video", SettingType::Path, 0, 0, false, "--video", nullptr}, &Req::video, &Set::video, none},
      {{"mask", SettingType::Path, 0, 0, false, "--mask", nullptr}, &Req::mask, &Set::mask, none},
      {{"references", SettingType::PathList, 0, 0, false, "--reference", nullptr}, &Req::references, &Set::references, none},
      {{"context_scale", SettingType::Number, 0, 10, false, "--context-scale", nullptr}, &Req::context_scale, &Set::context_scale, none},
      {{"strength", SettingType::Number, 0, 1, false, "--strength", nullptr}, &Req::strength, &Set::strength, none},
      {{"video_fps", SettingType::Number, 0, 240, true, "--video-fps", nullptr}, &Req::video_fps, &Set::video_fps, none},
      {{"keep_frames", SettingType::Integer, 1, 4096, false, "--keep-frames", nullptr}, &Req::keep_frames, &Set::keep_frames, none},
  };
  return table;
}

const Row* find_row(const std::string& key) {
  for (const Row& r : rows())
    if (key == r.meta.key) return &r;
  return nullptr;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

template <typename T>
bool is_set(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return !v.empty();
  else return v.has_value();
}

}  // namespace

const std::vector<Setting>& settings_table() {
  static const std::vector<Setting> table = [] {
    std::vector<Setting> out;
    for (const Row& r : rows()) out.push_back(r.meta);
    return out;
  }();
  return table;
}

const Setting& setting(const std::string& key) {
  const Row* r = find_row(key);
  if (!r) throw Error(concat("internal: no setting '", key, "'"));
  return r->meta;
}

bool in_range(const Setting& s, double v) { return std::isfinite(v) && (s.lo_open ? v > s.lo : v >= s.lo) && v <= s.hi; }

std::string range_text(const Setting& s) {
  if (s.type == SettingType::Integer || s.type == SettingType::Seed) return concat(number_text(s.lo), "..", number_text(s.hi));
  return concat(s.lo_open ? "(" : "[", number_text(s.lo), ", ", number_text(s.hi), "]");
}

void check_range(const Setting& s, double value) {
  if (!in_range(s, value)) throw Error(concat(s.flag, " must be in ", range_text(s), ", got ", number_text(value)));
}

namespace {

// A file named by a JSON file, under `rule`.
std::string checked_path(const std::string& name, const std::string& key, const PathRule& rule, const std::string& where) {
  if (!rule.allowed)
    throw Error(concat(where, ": field '", key, "' cannot name a file here (give it on the command line: ", setting(key).flag, ")"));
  const std::filesystem::path p(name);
  const std::filesystem::path normal = p.lexically_normal();
  if (name.empty() || name.find('\0') != std::string::npos || name.find("://") != std::string::npos || p.is_absolute() ||
      normal.empty() || *normal.begin() == "..")
    throw Error(concat(where, ": field '", key, "' must be a file name relative to the folder of the file naming it, got '", name, "'"));
  return (std::filesystem::path(rule.folder) / normal).string();
}

}  // namespace

void apply_overrides(const nlohmann::json& j, GenerationRequest& r, const std::string& where,
                     const std::vector<std::string>& allowed_extra, bool only_unset, const PathRule& paths) {
  if (!j.is_object()) throw Error(concat(where, ": expected a JSON object"));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const Row* row = find_row(key);
    if (!row) {
      if (std::find(allowed_extra.begin(), allowed_extra.end(), key) == allowed_extra.end())
        throw Error(concat(where, ": unknown field '", key, "'"));
      continue;
    }
    if (row->meta.type == SettingType::Size) {
      const std::string text = field_or<std::string>(j, key, "", where);
      int64_t w = 0, h = 0;
      if (!parse_size(text, w, h)) throw Error(concat(where, ": field 'size' must look like WIDTHxHEIGHT, got '", text, "'"));
      if (!only_unset || !r.width) r.width = w;
      if (!only_unset || !r.height) r.height = h;
      continue;
    }
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            auto& field = r.*member;
            using Field = std::remove_reference_t<decltype(field)>;
            using Value = std::conditional_t<std::is_same_v<Field, std::string>, std::string, typename Field::value_type>;
            Value value{};
            read_field(j, key, value, where);
            if constexpr (std::is_same_v<Value, std::string>)
              if (row->meta.type == SettingType::Path) value = checked_path(value, key, paths, where);
            if constexpr (std::is_same_v<Value, std::vector<std::string>>) {
              if (value.size() > kMaxReferences)
                throw Error(concat(where, ": field '", key, "' names ", value.size(), " files, more than ", kMaxReferences));
              for (std::string& name : value) name = checked_path(name, key, paths, where);
            }
            if (!only_unset || !is_set(field)) field = value;
          }
        },
        row->request);
  }
}

void fill_unset(GenerationRequest& r, const GenerationRequest& from) {
  for (const Row& row : rows())
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>)
            if (!is_set(r.*member)) r.*member = from.*member;
        },
        row.request);
}

bool parse_size(const std::string& text, int64_t& width, int64_t& height) {
  long long w = 0, h = 0;
  char x = 0, rest = 0;
  if (std::sscanf(text.c_str(), "%lld%c%lld%c", &w, &x, &h, &rest) != 3 || (x != 'x' && x != 'X')) return false;
  width = w;
  height = h;
  return true;
}

GenerationDefaults read_defaults(const nlohmann::json& j, const std::string& where, GenerationDefaults d) {
  if (!j.is_object()) throw Error(concat(where, ": expected a JSON object"));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Row* row = nullptr;
    for (const Row& r : rows())
      if (r.meta.defaults_key && it.key() == r.meta.defaults_key) row = &r;
    if (!row) throw Error(concat(where, ": unknown field '", it.key(), "'"));
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            auto& field = d.*member;
            using Field = std::remove_reference_t<decltype(field)>;
            using Value = std::conditional_t<std::is_same_v<Field, std::optional<double>>, double, Field>;
            Value value{};
            read_field(j, it.key(), value, where);
            if constexpr (std::is_arithmetic_v<Value>)
              if (!in_range(row->meta, static_cast<double>(value)))
                throw Error(concat(where, ": field '", it.key(), "' = ", value, " is outside ",
                                   row->meta.type == SettingType::Integer
                                       ? concat("[", number_text(row->meta.lo), ", ", number_text(row->meta.hi), "]")
                                       : range_text(row->meta)));
            field = value;
          }
        },
        row->defaults);
  }
  return d;
}

nlohmann::json defaults_json(const GenerationDefaults& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const Row& row : rows())
    std::visit(
        [&](auto member) {
          if constexpr (std::is_same_v<decltype(member), std::optional<double> Def::*>) {
            if (d.*member) j[row.meta.defaults_key] = *(d.*member);
          } else if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            j[row.meta.defaults_key] = d.*member;
          }
        },
        row.defaults);
  return j;
}

nlohmann::json settings_record(const GenerationSettings& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const Row& row : rows())
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) j[row.meta.key] = s.*member;
        },
        row.settings);
  // Recorded only where they say something: a second expert's own scale, a first frame.
  if (s.cfg_low_noise == s.cfg) j.erase("cfg_low_noise");
  if (s.image.empty()) j.erase("image");
  if (s.last_image.empty()) j.erase("last_image");
  if (s.video.empty()) j.erase("video");
  if (s.mask.empty()) j.erase("mask");
  if (s.references.empty()) j.erase("references");
  // VACE's scale and video-to-video's strength, where they apply.
  if (s.references.empty() && s.video.empty()) j.erase("context_scale");
  if (s.video.empty()) {
    j.erase("strength");
    j.erase("video_fps");
  }
  if (s.keep_frames == 0) j.erase("keep_frames");
  if (s.context_windows == "none") j.erase("context_windows");
  return j;
}

}  // namespace kino
