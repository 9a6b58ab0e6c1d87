#include "loading/layouts.h"

#include <algorithm>
#include <filesystem>

#include "kino/error.h"
#include "util/registry.h"
#include "wan/layouts.h"

namespace fs = std::filesystem;

namespace kino {

namespace {

Registry<ComponentLayouts>& registry() {
  static Registry<ComponentLayouts> all(wan::layouts());
  return all;
}

const Layout& pick(const ComponentLayouts& c, const std::vector<std::string>& stored, const std::string& where) {
  for (const Layout& l : c.layouts)
    if (l.recognises(stored)) return l;
  throw Error(concat(where, ": its tensor names are in no layout kino knows for a ", c.family, " ", c.component));
}

}  // namespace

void register_layouts(ComponentLayouts layouts) { registry().add(std::move(layouts)); }

const ComponentLayouts& component_layouts(const std::string& family, const std::string& component, const std::string& where) {
  const ComponentLayouts* c =
      registry().find([&](const ComponentLayouts& l) { return l.family == family && l.component == component; });
  if (!c) throw Error(concat(where, ": kino has no key map for the ", component, " of a ", family, " model"));
  return *c;
}

NameMap official_names(const std::string& family, const std::string& component, const std::vector<std::string>& stored,
                       const std::string& where) {
  return pick(component_layouts(family, component, where), stored, where).official_names(stored, where);
}

nlohmann::json infer_config(const std::string& family, const std::string& component, const TensorSet& set,
                            const NameMap& names) {
  return component_layouts(family, component, set.path()).infer_config(set, names);
}

namespace {

// The index of `path`; with `config`, the fields its shapes decide are added
// to it and the family's rule completes it.
WeightIndex make_index(const std::string& family, const std::string& component, const std::string& path,
                       nlohmann::json* config) {
  const ComponentLayouts& c = component_layouts(family, component, path);
  const TensorSet set = TensorSet::open(path);
  const std::vector<std::string> stored = set.names();
  const Layout& layout = pick(c, stored, path);
  WeightIndex index{path, layout.name, layout.official_names(stored, path), 0, 0, {}};
  for (const auto& [official, name] : index.names) {
    const TensorView* v = set.find(name);
    ++index.types[dtype_name(v->dtype)];
    if (is_quantised(v->dtype)) index.fixed_bytes += static_cast<int64_t>(v->nbytes);  // kept as stored
    else if (is_floating(v->dtype)) index.floating_elements += v->numel();
    else index.fixed_bytes += static_cast<int64_t>(v->nbytes);
  }
  if (!config) return index;
  const nlohmann::json inferred = c.infer_config(set, index.names);
  for (auto it = inferred.begin(); it != inferred.end(); ++it)
    if (!config->contains(it.key())) (*config)[it.key()] = it.value();
  if (c.complete) c.complete(*config, path);
  return index;
}

}  // namespace

WeightIndex index_weights(const std::string& family, const std::string& component, const std::string& path,
                          nlohmann::json& config) {
  return make_index(family, component, path, &config);
}

WeightIndex index_weights(const std::string& family, const std::string& component, const std::string& path) {
  return make_index(family, component, path, nullptr);
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string replace_prefix(const std::string& s, const std::vector<std::pair<std::string, std::string>>& rules) {
  for (const auto& [from, to] : rules)
    if (starts_with(s, from)) return to + s.substr(from.size());
  return s;
}

bool split_block(const std::string& s, const std::string& head, std::string& block, std::string& rest) {
  if (!starts_with(s, head)) return false;
  size_t i = head.size();
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == head.size() || i - head.size() > 6 || i >= s.size() || s[i] != '.') return false;
  block = s.substr(head.size(), i - head.size());
  rest = s.substr(i + 1);
  return true;
}

std::string joined_part(const std::string& official, int k) { return concat(official, "#", k); }

NameMap map_names(const std::vector<std::string>& stored, const std::string& where,
                  const std::function<std::string(const std::string&)>& rename,
                  const std::function<bool(const std::string&)>& skip) {
  NameMap out;
  for (const auto& n : stored) {
    if (skip(n)) continue;
    const std::string official = rename(n);
    auto [it, fresh] = out.emplace(official, n);
    if (!fresh) throw Error(concat(where, ": tensors '", it->second, "' and '", n, "' both stand for '", official, "'"));
  }
  return out;
}

std::vector<std::string> fp8_scale_names(const std::string& w) {
  if (!ends_with(w, ".weight")) return {};
  const std::string layer = w.substr(0, w.size() - 6);
  return {layer + "scale_weight", layer + "weight_scale"};
}

std::string component_weights(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  std::vector<std::string> index, single;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (ends_with(name, ".safetensors.index.json")) index.push_back(e.path().string());
    else if (ends_with(name, ".safetensors")) single.push_back(e.path().string());
  }
  if (index.size() == 1) return index[0];
  if (index.empty() && single.size() == 1) return single[0];
  throw Error(concat(path, ": expected one *.safetensors.index.json or one *.safetensors file in this folder, found ",
                     index.size(), " and ", single.size()));
}

}  // namespace kino
