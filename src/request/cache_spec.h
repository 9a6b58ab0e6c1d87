// Training-free step caching as asked for (`--cache`, a preset's, batch
// line's or manifest default's "cache"), and the constants the reference
// scripts ship per model. No torch here; the methods run in
// sampling/step_cache.h.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kino {

struct CacheSpec {
  enum class Method { None, TeaCache, MagCache, EasyCache };
  Method method = Method::None;
  double threshold = 0;    // the method's: TeaCache rel_l1_thresh, MagCache magcache_thresh, EasyCache thresh
  bool ret_steps = false;  // TeaCache --use_ret_steps
  int64_t k = 2;           // MagCache --magcache_K
  double retention = 0.2;  // MagCache --retention_ratio
};

// "METHOD[:THRESHOLD][,OPTION...]" ("" or "none": off), options
// "ret_steps" (TeaCache), "k=N" and "retention=R" (MagCache); what is left
// out takes the reference script's default (TeaCache 0.2 without ret_steps,
// MagCache 0.12, K 2, retention 0.2, EasyCache 0.05). kino::Error naming
// `where` for anything else.
CacheSpec parse_cache_spec(const std::string& text, const std::string& where);
// The canonical spelling, every option of the method given ("" when off).
std::string cache_spec_text(const CacheSpec& spec);
const char* cache_method_name(CacheSpec::Method method);

// The constants of a model the reference scripts were tuned for: TeaCache's
// rescaling polynomials (highest power first) and MagCache's magnitude
// ratios (per step, prompt then negative prompt).
struct CacheConstants {
  std::string model;  // "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p"
  std::vector<double> teacache, teacache_ret_steps, mag_ratios;
};
std::optional<CacheConstants> cache_constants(const std::string& model);
// The names cache_constants knows, comma-separated (for messages).
std::string cache_constant_names();

}  // namespace kino
