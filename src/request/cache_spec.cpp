#include "request/cache_spec.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kino/error.h"

namespace kino {

namespace {

// The reference scripts' constants, by the model their checkpoint folder
// names: TeaCache4Wan2.1/teacache_generate.py (polynomials, highest power
// first; without and with --use_ret_steps) and MagCache4Wan2.1/
// magcache_generate.py (magnitude ratios, interleaved prompt / negative per
// step, the first pair padding; T2V tables for 50 steps, I2V for 40).
const std::vector<CacheConstants>& known() {
  static const std::vector<CacheConstants> all = {
      {"wan2.1-t2v-1.3b",
        {2396.76752, -1311.10545, 201.331979, -8.29855975, 0.137887774},
        {-52186.2437, 9230.41404, -528.275948, 13.6987616, -0.0499875664},
        {1.0, 1.0, 1.0124, 1.02213, 1.00166, 1.0041,
        0.99791, 1.00061, 0.99682, 0.99762, 0.99634, 0.99685,
        0.99567, 0.99586, 0.99416, 0.99422, 0.99578, 0.99575,
        0.9957, 0.99563, 0.99511, 0.99506, 0.99535, 0.99531,
        0.99552, 0.99549, 0.99541, 0.99539, 0.9954, 0.99536,
        0.99489, 0.99485, 0.99518, 0.99514, 0.99484, 0.99478,
        0.99481, 0.99479, 0.99415, 0.99413, 0.99419, 0.99416,
        0.99396, 0.99393, 0.99388, 0.99386, 0.99349, 0.99349,
        0.99309, 0.99304, 0.9927, 0.9927, 0.99228, 0.99226,
        0.99171, 0.9917, 0.99137, 0.99135, 0.99068, 0.99063,
        0.99005, 0.99003, 0.98944, 0.98942, 0.98849, 0.98849,
        0.98758, 0.98757, 0.98644, 0.98643, 0.98504, 0.98503,
        0.9836, 0.98359, 0.98202, 0.98201, 0.97977, 0.97978,
        0.97717, 0.97718, 0.9741, 0.97411, 0.97003, 0.97002,
        0.96538, 0.96541, 0.9593, 0.95933, 0.95086, 0.95089,
        0.94013, 0.94019, 0.92402, 0.92414, 0.90241, 0.9026,
        0.86821, 0.86868, 0.81838, 0.81939}},
      {"wan2.1-t2v-14b",
        {-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404},
        {-303318.725, 49053.7029, -2655.30556, 58.7365115, -0.315583525},
        {1.0, 1.0, 1.02504, 1.03017, 1.00025, 1.00251,
        0.9985, 0.99962, 0.99779, 0.99771, 0.9966, 0.99658,
        0.99482, 0.99476, 0.99467, 0.99451, 0.99664, 0.99656,
        0.99434, 0.99431, 0.99533, 0.99545, 0.99468, 0.99465,
        0.99438, 0.99434, 0.99516, 0.99517, 0.99384, 0.9938,
        0.99404, 0.99401, 0.99517, 0.99516, 0.99409, 0.99408,
        0.99428, 0.99426, 0.99347, 0.99343, 0.99418, 0.99416,
        0.99271, 0.99269, 0.99313, 0.99311, 0.99215, 0.99215,
        0.99218, 0.99215, 0.99216, 0.99217, 0.99163, 0.99161,
        0.99138, 0.99135, 0.98982, 0.9898, 0.98996, 0.98995,
        0.9887, 0.98866, 0.98772, 0.9877, 0.98767, 0.98765,
        0.98573, 0.9857, 0.98501, 0.98498, 0.9838, 0.98376,
        0.98177, 0.98173, 0.98037, 0.98035, 0.97678, 0.97677,
        0.97546, 0.97543, 0.97184, 0.97183, 0.96711, 0.96708,
        0.96349, 0.96345, 0.95629, 0.95625, 0.94926, 0.94929,
        0.93964, 0.93961, 0.92511, 0.92504, 0.90693, 0.90678,
        0.8796, 0.87945, 0.86111, 0.86189}},
      {"wan2.1-i2v-14b-480p",
        {-3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01},
        {2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01},
        {1.0, 1.0, 0.98783, 0.98993, 0.97559, 0.97593,
        0.98311, 0.98319, 0.98202, 0.98225, 0.9888, 0.98878,
        0.98762, 0.98759, 0.98957, 0.98971, 0.99052, 0.99043,
        0.99383, 0.99384, 0.98857, 0.9886, 0.99065, 0.99068,
        0.98845, 0.98847, 0.99057, 0.99057, 0.98957, 0.98961,
        0.98601, 0.9861, 0.98823, 0.98823, 0.98756, 0.98759,
        0.98808, 0.98814, 0.98721, 0.98724, 0.98571, 0.98572,
        0.98543, 0.98544, 0.98157, 0.98165, 0.98411, 0.98413,
        0.97952, 0.97953, 0.98149, 0.9815, 0.9774, 0.97742,
        0.97825, 0.97826, 0.97355, 0.97361, 0.97085, 0.97087,
        0.97056, 0.97055, 0.96588, 0.96587, 0.96113, 0.96124,
        0.9567, 0.95681, 0.94961, 0.94969, 0.93973, 0.93988,
        0.93217, 0.93224, 0.91878, 0.91896, 0.90955, 0.90954,
        0.92617, 0.92616}},
      {"wan2.1-i2v-14b-720p",
        {-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683},
        {8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02},
        {1.0, 1.0, 0.99428, 0.99498, 0.98588, 0.98621,
        0.98273, 0.98281, 0.99018, 0.99023, 0.98911, 0.98917,
        0.98646, 0.98652, 0.99454, 0.99456, 0.9891, 0.98909,
        0.99124, 0.99127, 0.99102, 0.99103, 0.99215, 0.99212,
        0.99515, 0.99515, 0.99576, 0.99572, 0.99068, 0.99072,
        0.99097, 0.99097, 0.99166, 0.99169, 0.99041, 0.99042,
        0.99201, 0.99198, 0.99101, 0.99101, 0.98599, 0.98603,
        0.98845, 0.98844, 0.98848, 0.98851, 0.98862, 0.98857,
        0.98718, 0.98719, 0.98497, 0.98497, 0.98264, 0.98263,
        0.98389, 0.98393, 0.97938, 0.9794, 0.97535, 0.97536,
        0.97498, 0.97499, 0.973, 0.97301, 0.96827, 0.96828,
        0.96261, 0.96263, 0.95335, 0.9534, 0.94649, 0.94655,
        0.93397, 0.93414, 0.91636, 0.9165, 0.89088, 0.89109,
        0.8679, 0.86768}},
  };
  return all;
}

const char* kMethods[] = {"none", "teacache", "magcache", "easycache"};

// The shortest decimal that reads back as `v`.
std::string exact_text(double v) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

double number(const std::string& text, const std::string& what, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) throw Error(concat(where, ": ", what, " '", text, "' is not a number"));
  return v;
}

}  // namespace

const char* cache_method_name(CacheSpec::Method method) { return kMethods[static_cast<int>(method)]; }

CacheSpec parse_cache_spec(const std::string& text, const std::string& where) {
  CacheSpec s;
  if (text.empty() || text == "none") return s;
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t comma = text.find(',', at);
    parts.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  const std::string head = parts[0];
  const size_t colon = head.find(':');
  const std::string method = head.substr(0, colon);
  if (method == "teacache") s.method = CacheSpec::Method::TeaCache, s.threshold = 0.2;
  else if (method == "magcache") s.method = CacheSpec::Method::MagCache, s.threshold = 0.12;
  else if (method == "easycache") s.method = CacheSpec::Method::EasyCache, s.threshold = 0.05;
  else throw Error(concat(where, ": unknown cache method '", method, "' (teacache, magcache, easycache or none)"));
  if (colon != std::string::npos) s.threshold = number(head.substr(colon + 1), "cache threshold", where);
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& o = parts[i];
    const size_t eq = o.find('=');
    const std::string key = o.substr(0, eq), value = eq == std::string::npos ? "" : o.substr(eq + 1);
    if (s.method == CacheSpec::Method::TeaCache && o == "ret_steps") {
      s.ret_steps = true;
    } else if (s.method == CacheSpec::Method::MagCache && key == "k" && eq != std::string::npos) {
      const double k = number(value, "k", where);
      if (k < 1 || k > 1000 || k != std::floor(k)) throw Error(concat(where, ": magcache k must be an integer 1..1000, got ", value));
      s.k = static_cast<int64_t>(k);
    } else if (s.method == CacheSpec::Method::MagCache && key == "retention" && eq != std::string::npos) {
      s.retention = number(value, "retention", where);
      if (s.retention < 0 || s.retention > 1) throw Error(concat(where, ": magcache retention must be in [0, 1], got ", value));
    } else {
      throw Error(concat(where, ": '", o, "' is not an option of ", method,
                         s.method == CacheSpec::Method::TeaCache   ? " (ret_steps)"
                         : s.method == CacheSpec::Method::MagCache ? " (k=N, retention=R)"
                                                                   : " (it has none)"));
    }
  }
  return s;
}

std::string cache_spec_text(const CacheSpec& s) {
  if (s.method == CacheSpec::Method::None) return "";
  std::string out = concat(cache_method_name(s.method), ":", exact_text(s.threshold));
  if (s.method == CacheSpec::Method::TeaCache && s.ret_steps) out += ",ret_steps";
  if (s.method == CacheSpec::Method::MagCache) out += concat(",k=", s.k, ",retention=", exact_text(s.retention));
  return out;
}

std::optional<CacheConstants> cache_constants(const std::string& model) {
  for (const CacheConstants& c : known())
    if (c.model == model) return c;
  return std::nullopt;
}

std::string cache_constant_names() {
  std::string out;
  for (const CacheConstants& c : known()) out += (out.empty() ? "" : ", ") + c.model;
  return out;
}

}  // namespace kino
