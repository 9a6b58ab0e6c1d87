// JSON read from outside (manifests, configs, index files, safetensors
// headers, prompt files, storyboards, presets, video metadata), parsed with
// a nesting bound enforced while parsing: nothing kino reads nests deeper,
// and nothing downstream (copies, comparisons, dumps, which recurse) ever
// sees more. No torch here.
#pragma once
#include <istream>
#include <nlohmann/json.hpp>
#include <string>

namespace kino {

constexpr int kMaxJsonDepth = 64;

// kino::Error "where: not valid JSON (...)" or "where: JSON nested deeper
// than 64 levels".
nlohmann::json parse_json(const std::string& text, const std::string& where);
nlohmann::json parse_json(std::istream& in, const std::string& where);
nlohmann::json parse_json(const char* begin, const char* end, const std::string& where);

}  // namespace kino
