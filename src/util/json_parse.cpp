#include "util/json_parse.h"

#include "kino/error.h"

namespace kino {

namespace {

template <typename Input>
nlohmann::json parse_bounded(Input&& input, const std::string& where) {
  auto bound = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth) throw Error(concat(where, ": JSON nested deeper than ", kMaxJsonDepth, " levels"));
    return true;
  };
  try {
    return nlohmann::json::parse(std::forward<Input>(input), bound);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat(where, ": not valid JSON (", e.what(), ")"));
  }
}

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& where) { return parse_bounded(text, where); }
nlohmann::json parse_json(std::istream& in, const std::string& where) { return parse_bounded(in, where); }
nlohmann::json parse_json(const char* begin, const char* end, const std::string& where) {
  return parse_bounded(std::string(begin, end), where);
}

}  // namespace kino
