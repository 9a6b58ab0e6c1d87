// umT5's configuration (wan/modules/t5.py umt5_xxl), read from and written
// to a manifest's text_encoder.config. No torch here.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace kino {

struct UMT5Config {
  int64_t vocab = 256384, dim = 4096, dim_attn = 4096, dim_ffn = 10240;
  int64_t num_heads = 64, num_layers = 24, num_buckets = 32;
  bool shared_pos = false;
  int64_t max_distance = 128;
  // Reads a manifest's config object (fields left out keep these values);
  // `where` names it in errors.
  static UMT5Config from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

}  // namespace kino
