#include "text/umt5_config.h"

#include "util/json_fields.h"

namespace kino {

UMT5Config UMT5Config::from_json(const nlohmann::json& j, const std::string& where) {
  UMT5Config c;
  read_field(j, "vocab", c.vocab, where);
  read_field(j, "dim", c.dim, where);
  read_field(j, "dim_attn", c.dim_attn, where);
  read_field(j, "dim_ffn", c.dim_ffn, where);
  read_field(j, "num_heads", c.num_heads, where);
  read_field(j, "num_layers", c.num_layers, where);
  read_field(j, "num_buckets", c.num_buckets, where);
  read_field(j, "shared_pos", c.shared_pos, where);
  return c;
}

nlohmann::json UMT5Config::to_json() const {
  return {{"vocab", vocab},         {"dim", dim},           {"dim_attn", dim_attn},       {"dim_ffn", dim_ffn},
          {"num_heads", num_heads}, {"num_layers", num_layers}, {"num_buckets", num_buckets}, {"shared_pos", shared_pos}};
}

}  // namespace kino
