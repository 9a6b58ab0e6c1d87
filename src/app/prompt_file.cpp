#include "kino/prompt_file.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "kino/error.h"
#include "request/settings.h"
#include "text/text_clean.h"
#include "util/json_fields.h"
#include "util/json_parse.h"

namespace kino {

std::vector<BatchItem> read_prompt_file(const std::string& path) {
  if (path == "-") return parse_prompt_file(std::cin, "<stdin>");
  std::ifstream file(path);
  if (!file) throw Error(concat("cannot read prompt file ", path, ": ", std::strerror(errno)));
  return parse_prompt_file(file, path);
}

namespace {

// The folder the files a prompt file or storyboard names are relative to:
// its own (the current one for stdin).
std::string folder_of_file(const std::string& name) {
  if (name == "<stdin>") return ".";
  const std::filesystem::path parent = std::filesystem::path(name).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

std::vector<BatchItem> parse_prompt_file(std::istream& in, const std::string& name) {
  const std::string folder = folder_of_file(name);
  std::vector<BatchItem> items;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    // A UTF-8 byte-order mark (Windows editors write one) is not text.
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    BatchItem item;
    item.index = static_cast<int64_t>(items.size());
    item.line = lineno;
    const std::string where = concat(name, ":", lineno);
    try {
      if (!is_valid_utf8(line)) throw Error(concat(where, ": not valid UTF-8"));
      if (line[first] == '{') {
        const nlohmann::json j = parse_json(line, where);
        apply_overrides(j, item.request, where, {"preset", "output"}, false, PathRule::inside(folder));
        read_field(j, "preset", item.preset, where);
        read_field(j, "output", item.output_name, where);
        if (item.request.prompt.empty()) throw Error(concat(where, ": field 'prompt' is missing or empty"));
      } else {
        item.request.prompt = line.substr(first);
      }
    } catch (const Error& e) {
      item.error = e.what();
    }
    items.push_back(std::move(item));
  }
  // A folder opens, then fails at the first read (EISDIR).
  if (in.bad()) throw Error(concat("cannot read prompt file ", name, ": ", std::strerror(errno)));
  return items;
}

Storyboard read_storyboard(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(concat("cannot read storyboard ", path));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(concat("cannot read storyboard ", path));
  return parse_storyboard(text, path);
}

Storyboard parse_storyboard(const std::string& text, const std::string& name) {
  const std::string folder = folder_of_file(name);
  const nlohmann::json j = parse_json(text, name);
  if (!j.is_object() || !j.contains("shots") || !j["shots"].is_array() || j["shots"].empty())
    throw Error(concat(name, ": needs a non-empty \"shots\" array"));
  Storyboard board;
  if (read_field(j, "crossfade", board.crossfade, name) && !(board.crossfade >= 0 && board.crossfade <= 60))
    throw Error(concat(name, ": 'crossfade' must be a number of seconds in [0, 60]"));
  read_field(j, "continuous", board.continuous, name);
  if (board.continuous && board.crossfade > 0) throw Error(concat(name, ": a continuous storyboard has no crossfade (its shots blend)"));
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "crossfade" && it.key() != "shots" && it.key() != "continuous")
      throw Error(concat(name, ": unknown field '", it.key(), "'"));
  for (size_t i = 0; i < j["shots"].size(); ++i) {
    const std::string where = concat(name, " shot ", i + 1);
    const nlohmann::json& shot = j["shots"][i];
    StoryboardShot s;
    apply_overrides(shot, s.request, where, {"preset"}, false, PathRule::inside(folder));
    read_field(shot, "preset", s.preset, where);
    if (s.request.prompt.empty()) throw Error(concat(where, ": field 'prompt' is missing"));
    board.shots.push_back(std::move(s));
  }
  return board;
}

}  // namespace kino
