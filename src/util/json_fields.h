// Typed fields of JSON objects read from outside (manifests, configs,
// prompt files, storyboards, presets, video metadata), one rule for all:
// integers must be JSON integers (1e30 or 2.5 is not a step count), numbers
// any JSON number, a wrong type one kino::Error naming where, field and kind.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "kino/error.h"

namespace kino {

namespace json_detail {

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

template <typename T>
bool fits(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  // Integers must fit the field's type: 4294967297 is not an int.
  else if constexpr (std::is_unsigned_v<T>)
    return (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) &&
           v.get<uint64_t>() <= std::numeric_limits<T>::max();
  else if constexpr (std::is_integral_v<T>)
    return v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= INT64_MAX) &&
           v.get<int64_t>() >= std::numeric_limits<T>::min() && v.get<int64_t>() <= std::numeric_limits<T>::max();
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) return false;
    for (const auto& e : v)
      if (!fits<typename T::value_type>(e)) return false;
    return true;
  }
}

template <typename T>
std::string kind() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_integral_v<T> && sizeof(T) < 8)
    return concat("an integer from ", +std::numeric_limits<T>::min(), " to ", +std::numeric_limits<T>::max());
  else if constexpr (std::is_unsigned_v<T>) return "a non-negative integer";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (is_vector<T>::value) {
    using E = typename T::value_type;
    if constexpr (std::is_same_v<E, bool>) return "an array of true/false";
    else if constexpr (std::is_same_v<E, std::string>) return "an array of strings";
    else if constexpr (std::is_integral_v<E>) return "an array of integers";
    else return "an array of numbers";
  }
}

}  // namespace json_detail

// Reads j[key] into `out` when `j` has it (true), leaves `out` alone when
// not (false); a value of another kind is an error "where: field 'key' must
// be an integer" (or a number, a string, ...).
template <typename T>
bool read_field(const nlohmann::json& j, const std::string& key, T& out, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) return false;
  const nlohmann::json& v = j.at(key);
  if (!json_detail::fits<T>(v)) throw Error(concat(where, ": field '", key, "' must be ", json_detail::kind<T>()));
  out = v.get<T>();
  return true;
}

// j[key], or `fallback` when `j` does not have it.
template <typename T>
T field_or(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& where) {
  T out = fallback;
  read_field(j, key, out, where);
  return out;
}

}  // namespace kino
