#include "kino/prompt_file.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "kino/error.h"
#include "kino/presets.h"
#include "kino/tokenizer.h"

namespace kino {

std::vector<BatchItem> read_prompt_file(const std::string& path) {
  if (path == "-") return parse_prompt_file(std::cin, "<stdin>");
  std::ifstream file(path);
  if (!file) throw Error(concat("cannot read prompt file ", path, ": ", std::strerror(errno)));
  return parse_prompt_file(file, path);
}

std::vector<BatchItem> parse_prompt_file(std::istream& in, const std::string& name) {
  std::vector<BatchItem> items;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
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
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
          throw Error(concat(where, ": not valid JSON (", e.what(), ")"));
        }
        apply_overrides(j, item.request, where, {"preset", "output", "seconds", "aspect"});
        auto text = [&](const char* key) {
          if (!j[key].is_string()) throw Error(concat(where, ": '", key, "' must be a string"));
          return j[key].get<std::string>();
        };
        if (j.contains("preset")) item.preset = text("preset");
        if (j.contains("output")) item.output_name = text("output");
        if (j.contains("aspect")) item.request.aspect = text("aspect");
        if (j.contains("seconds")) {
          if (!j["seconds"].is_number()) throw Error(concat(where, ": 'seconds' must be a number"));
          item.request.seconds = j["seconds"].get<double>();
        }
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
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat(name, ": not valid JSON (", e.what(), ")"));
  }
  if (!j.is_object() || !j.contains("shots") || !j["shots"].is_array() || j["shots"].empty())
    throw Error(concat(name, ": needs a non-empty \"shots\" array"));
  Storyboard board;
  if (j.contains("crossfade")) {
    if (!j["crossfade"].is_number() || !(j["crossfade"].get<double>() >= 0 && j["crossfade"].get<double>() <= 60))
      throw Error(concat(name, ": 'crossfade' must be a number of seconds in [0, 60]"));
    board.crossfade = j["crossfade"].get<double>();
  }
  for (size_t i = 0; i < j["shots"].size(); ++i) {
    const std::string where = concat(name, " shot ", i + 1);
    const nlohmann::json& shot = j["shots"][i];
    GenerationRequest probe;
    apply_overrides(shot, probe, where, {"preset", "seconds"});
    if (probe.prompt.empty()) throw Error(concat(where, ": field 'prompt' is missing"));
    if (shot.contains("seconds") && !(shot["seconds"].is_number() && std::isfinite(shot["seconds"].get<double>()) && shot["seconds"].get<double>() > 0))
      throw Error(concat(where, ": 'seconds' must be a positive number"));
    if (shot.contains("preset") && !shot["preset"].is_string()) throw Error(concat(where, ": 'preset' must be a string"));
    board.shots.push_back(shot);
  }
  return board;
}

}  // namespace kino
