#include "adapters/lora_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "kino/error.h"
#include "loading/layouts.h"
#include "loading/tensor_file.h"
#include "util/json_fields.h"
#include "util/sha256.h"

namespace kino {

namespace {

// A key's role by its suffix; the rest of the key is its target.
const std::vector<std::pair<std::string, std::string>>& suffixes() {
  static const std::vector<std::pair<std::string, std::string>> s = {
      {".lora_up.weight", "up"},     {".lora_B.weight", "up"},      {".lora_down.weight", "down"}, {".lora_A.weight", "down"},
      {".lora_B.bias", "up_bias"},   {".alpha", "alpha"},           {".dora_scale", "dora_scale"}, {".diff_b", "diff_b"},
      {".diff", "diff"},             {".set_weight", "set"},        {".hada_w1_a", "hada_w1_a"},   {".hada_w1_b", "hada_w1_b"},
      {".hada_w2_a", "hada_w2_a"},   {".hada_w2_b", "hada_w2_b"},   {".lokr_w1_a", "lokr_w1_a"},   {".lokr_w1_b", "lokr_w1_b"},
      {".lokr_w1", "lokr_w1"},       {".lokr_w2_a", "lokr_w2_a"},   {".lokr_w2_b", "lokr_w2_b"},   {".lokr_w2", "lokr_w2"}};
  return s;
}

int64_t product(const std::vector<int64_t>& s, size_t from = 0) {
  return std::accumulate(s.begin() + static_cast<std::ptrdiff_t>(std::min(from, s.size())), s.end(), int64_t{1},
                         std::multiplies<>());
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A matrix view [rows, cols] of a factor (flatten(1)).
std::vector<int64_t> as_matrix(const std::vector<int64_t>& s) {
  return s.empty() ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{s[0], product(s, 1)};
}

// Targets -> the model's module paths (the parameter name without
// ".weight", or the parameter itself when it is not a weight).
class Targets {
 public:
  Targets(const std::string& family, const std::set<std::string>& parameters, const std::vector<std::string>& targets,
          const std::string& where)
      : parameters_(parameters) {
    for (const auto& p : parameters) {
      std::string base = ends_with(p, ".weight") ? p.substr(0, p.size() - 7) : p;
      std::string underscored = base;
      std::replace(underscored.begin(), underscored.end(), '.', '_');
      kohya_[underscored] = base;
    }
    // Diffusers names go through the family's Diffusers key map, all at
    // once (as a file is recognised from all its names).
    std::vector<std::string> diffusers;
    for (const auto& t : targets)
      if (starts_with(t, "transformer.")) diffusers.push_back(t.substr(12) + ".weight");
    if (!diffusers.empty()) {
      const ComponentLayouts& c = component_layouts(family, "transformer", where);
      auto layout = std::find_if(c.layouts.begin(), c.layouts.end(), [](const Layout& l) { return l.name == "diffusers"; });
      if (layout != c.layouts.end())
        for (const auto& [official, stored] : layout->official_names(diffusers, where))
          diffusers_["transformer." + stored.substr(0, stored.size() - 7)] = official.substr(0, official.size() - 7);
    }
  }

  // The module path of a target, "" when the model has none such.
  std::string resolve(const std::string& target) const {
    std::string base;
    if (starts_with(target, "diffusion_model.")) base = target.substr(16);
    else if (starts_with(target, "lora_unet_")) base = lookup(kohya_, target.substr(10));
    else if (starts_with(target, "lora_prior_unet_")) base = lookup(kohya_, target.substr(16));
    else if (starts_with(target, "transformer.")) base = lookup(diffusers_, target);
    else base = target;
    return base;
  }
  // The parameter a patch of `base`'s weight changes ("" when none).
  std::string weight(const std::string& base) const {
    if (base.empty()) return "";
    if (parameters_.count(base + ".weight")) return base + ".weight";
    return parameters_.count(base) ? base : "";
  }
  std::string bias(const std::string& base) const { return !base.empty() && parameters_.count(base + ".bias") ? base + ".bias" : ""; }

 private:
  static std::string lookup(const std::map<std::string, std::string>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? "" : it->second;
  }
  const std::set<std::string>& parameters_;
  std::map<std::string, std::string> kohya_, diffusers_;
};

}  // namespace

LoraPlan plan_lora(const LoraSpec& spec, const std::string& component, const std::string& family,
                   const std::set<std::string>& parameters, const ParameterShape& shape_of) {
  const TensorSet file = TensorSet::open(spec.path);
  LoraPlan plan;
  plan.spec = spec;
  plan.component = component;
  std::vector<std::string> keys = file.names();
  std::sort(keys.begin(), keys.end());
  const bool fun = std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return starts_with(k, "lora_unet__"); });

  // Keys grouped by target, each with its role.
  std::map<std::string, std::map<std::string, std::string>> groups;
  std::vector<std::string> targets;
  for (const auto& key : keys) {
    const std::string k = fun && starts_with(key, "lora_unet__") ? "lora_unet_" + key.substr(11) : key;
    auto s = std::find_if(suffixes().begin(), suffixes().end(), [&](const auto& p) { return ends_with(k, p.first); });
    if (s == suffixes().end()) {
      plan.unmatched.push_back(key);
      continue;
    }
    const std::string target = k.substr(0, k.size() - s->first.size());
    if (!groups.count(target)) targets.push_back(target);
    groups[target][s->second] = key;
  }
  const Targets resolver(family, parameters, targets, spec.path);

  auto shape = [&](const std::string& key) { return file.find(key)->shape; };
  auto refuse = [&](const std::string& key, const std::string& what, const std::string& param) {
    throw Error(concat(spec.path, ": tensor '", key, "': ", what, " does not fit ", param, " ",
                       shape_text(shape_of(param).value_or(std::vector<int64_t>{})), " (a LoRA for another model?)"));
  };
  for (const auto& target : targets) {
    std::map<std::string, std::string> roles = groups[target];
    const std::string base = resolver.resolve(target);
    const std::string weight = resolver.weight(base), bias = resolver.bias(base);
    // A term of `kind` on `param` from the roles `names` (those present), which are used up.
    auto take = [&](LoraKind kind, const std::string& param, std::initializer_list<const char*> names) {
      LoraTerm t{kind, param, {}};
      for (const char* n : names)
        if (roles.count(n)) {
          t.parts[n] = roles[n];
          roles.erase(n);
        }
      plan.terms.push_back(std::move(t));
    };
    if (!weight.empty()) {
      const std::vector<int64_t> w = *shape_of(weight);
      const std::vector<int64_t> wm = as_matrix(w);
      if (roles.count("up") && roles.count("down")) {
        const auto up = as_matrix(shape(roles["up"])), down = as_matrix(shape(roles["down"]));
        if (up[1] != down[0] || up[0] != w[0] || up[0] * down[1] != product(w))
          refuse(roles["up"], concat("lora ", shape_text(up), " x ", shape_text(down)), weight);
        if (roles.count("dora_scale") && product(shape(roles["dora_scale"])) != wm[1])
          refuse(roles["dora_scale"], concat("dora_scale ", shape_text(shape(roles["dora_scale"]))), weight);
        take(roles.count("dora_scale") ? LoraKind::DoRA : LoraKind::LowRank, weight, {"up", "down", "alpha", "dora_scale"});
      } else if (roles.count("hada_w1_a") && roles.count("hada_w1_b") && roles.count("hada_w2_a") && roles.count("hada_w2_b")) {
        const auto a = as_matrix(shape(roles["hada_w1_a"])), b = as_matrix(shape(roles["hada_w1_b"]));
        const auto c = as_matrix(shape(roles["hada_w2_a"])), d = as_matrix(shape(roles["hada_w2_b"]));
        if (a[1] != b[0] || c[1] != d[0] || a[0] != c[0] || b[1] != d[1] || a[0] * b[1] != product(w) || a[0] != w[0])
          refuse(roles["hada_w1_a"], concat("loha ", shape_text(a), " x ", shape_text(b)), weight);
        take(LoraKind::LoHa, weight, {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"});
      } else if ((roles.count("lokr_w1") || (roles.count("lokr_w1_a") && roles.count("lokr_w1_b"))) &&
                 (roles.count("lokr_w2") || (roles.count("lokr_w2_a") && roles.count("lokr_w2_b")))) {
        auto factor = [&](const std::string& n) {
          if (roles.count(n)) return as_matrix(shape(roles[n]));
          const auto a = as_matrix(shape(roles[n + "_a"])), b = as_matrix(shape(roles[n + "_b"]));
          if (a[1] != b[0]) refuse(roles[n + "_a"], concat("lokr ", shape_text(a), " x ", shape_text(b)), weight);
          return std::vector<int64_t>{a[0], b[1]};
        };
        const auto w1 = factor("lokr_w1"), w2 = factor("lokr_w2");
        if (w1[0] * w2[0] != w[0] || w1[0] * w2[0] * w1[1] * w2[1] != product(w))
          refuse(roles.count("lokr_w1") ? roles["lokr_w1"] : roles["lokr_w1_a"],
                 concat("lokr kron(", shape_text(w1), ", ", shape_text(w2), ")"), weight);
        take(LoraKind::LoKr, weight, {"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "alpha"});
      }
      if (roles.count("diff")) {
        if (shape(roles["diff"]) != w) refuse(roles["diff"], concat("diff ", shape_text(shape(roles["diff"]))), weight);
        take(LoraKind::Diff, weight, {"diff"});
      }
      if (roles.count("set")) {
        if (shape(roles["set"]) != w) refuse(roles["set"], concat("set_weight ", shape_text(shape(roles["set"]))), weight);
        take(LoraKind::SetWeight, weight, {"set"});
      }
    }
    if (!bias.empty())
      for (const char* role : {"diff_b", "up_bias"})
        if (roles.count(role)) {
          if (shape(roles[role]) != *shape_of(bias)) refuse(roles[role], concat(role, " ", shape_text(shape(roles[role]))), bias);
          LoraTerm t{LoraKind::Diff, bias, {{"diff", roles[role]}}};
          roles.erase(role);
          plan.terms.push_back(std::move(t));
        }
    for (const auto& [role, key] : roles) plan.unmatched.push_back(key);  // alone, or for nothing the model has
  }
  std::sort(plan.unmatched.begin(), plan.unmatched.end());
  return plan;
}

LoraSpec parse_lora_spec(const std::string& arg, const std::string& expert) {
  LoraSpec spec{arg, 1.0, expert};
  const size_t colon = arg.rfind(':');
  if (colon == std::string::npos || colon + 1 == arg.size()) return spec;
  const std::string suffix = arg.substr(colon + 1);
  char* end = nullptr;
  const double v = std::strtod(suffix.c_str(), &end);
  if (end != suffix.c_str() + suffix.size() || !std::isfinite(v)) return spec;  // a ':' of the file's name
  spec.path = arg.substr(0, colon);
  spec.strength = v;
  return spec;
}

std::vector<LoraSpec> parse_lora_list(const nlohmann::json& list, const std::string& folder, bool inside, const std::string& where) {
  constexpr size_t kMaxLoras = 64;
  if (!list.is_array() || list.size() > kMaxLoras)
    throw Error(concat(where, ": field 'loras' must be a list of at most ", kMaxLoras, " LoRA files"));
  std::vector<LoraSpec> specs;
  for (const auto& item : list) {
    LoraSpec spec = item.is_string() ? parse_lora_spec(item.get<std::string>()) : LoraSpec{};
    if (!item.is_string()) {
      if (!item.is_object()) throw Error(concat(where, ": each of 'loras' is a file name or an object"));
      spec.path = field_or<std::string>(item, "file", "", where + " loras");
      read_field(item, "strength", spec.strength, where + " loras");
      read_field(item, "expert", spec.expert, where + " loras");
    }
    const std::filesystem::path p(spec.path);
    if (spec.path.empty() || spec.path.find('\0') != std::string::npos || spec.path.find("://") != std::string::npos)
      throw Error(concat(where, ": a LoRA file name is empty or not a file name: '", spec.path, "'"));
    if (inside && (p.is_absolute() || p.lexically_normal().empty() || *p.lexically_normal().begin() == ".."))
      throw Error(concat(where, ": LoRA '", spec.path, "' must be a file name relative to the folder of ", where));
    spec.path = (p.is_absolute() ? p : std::filesystem::path(folder) / p).lexically_normal().string();
    specs.push_back(spec);
  }
  return specs;
}

void add_loras(ModelManifest& m, const std::vector<LoraSpec>& specs) {
  for (const LoraSpec& spec : specs) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(spec.path, ec)) throw Error(concat("cannot read LoRA ", spec.path, ": not a regular file"));
    if (!(std::abs(spec.strength) <= 100)) throw Error(concat(spec.path, ": LoRA strength ", spec.strength, " is outside [-100, 100]"));
    if (!spec.expert.empty() && spec.expert != "high_noise" && spec.expert != "low_noise")
      throw Error(concat(spec.path, ": LoRA expert '", spec.expert, "' is neither high_noise nor low_noise"));
    if (!spec.expert.empty() && m.transformer_low_noise.empty())
      throw Error(concat(spec.path, ": a LoRA for the ", spec.expert, " expert needs a two-expert model; ", m.name,
                         " has one transformer (give it with --lora)"));
    const std::string digest = sha256_file(spec.path);
    std::vector<std::string> components;
    if (spec.expert != "low_noise") components.push_back("transformer");
    if (spec.expert != "high_noise" && !m.transformer_low_noise.empty()) components.push_back("transformer_low_noise");
    for (const std::string& component : components) {
      auto index = m.weight_index.find(component);
      if (index == m.weight_index.end()) throw Error(concat(m.path, ": the ", component, " weights were not indexed"));
      const TensorSet model = TensorSet::open(index->second->path);
      std::set<std::string> parameters;
      for (const auto& [official, stored] : index->second->names) parameters.insert(official);
      const NameMap& names = index->second->names;
      auto plan = std::make_shared<LoraPlan>(plan_lora(spec, component, m.family, parameters, [&](const std::string& official) {
        auto it = names.find(official);
        return it == names.end() ? std::nullopt : std::optional<std::vector<int64_t>>(model.find(it->second)->shape);
      }));
      plan->sha256 = digest;
      m.loras.push_back(std::move(plan));
    }
    m.lora_specs.push_back(spec);
  }
}

std::vector<LoraReport> lora_report(const ModelManifest& m) {
  std::vector<LoraReport> out;
  for (const auto& p : m.loras) {
    std::set<std::string> patched;
    for (const auto& t : p->terms) patched.insert(t.target);
    const std::string where = m.transformer_low_noise.empty() ? "the transformer"
                              : p->component == "transformer" ? "the high-noise expert"
                                                              : "the low-noise expert";
    std::string line = concat(std::filesystem::path(p->spec.path).filename().string(), " at ", p->spec.strength, " on ", where, ": ",
                              patched.size(), patched.size() == 1 ? " tensor" : " tensors", " patched");
    if (!p->unmatched.empty()) line += concat(", ", p->unmatched.size(), " keys matched nothing");
    out.push_back({line, p->unmatched});
  }
  return out;
}

std::vector<const LoraPlan*> loras_for(const ModelManifest& m, const std::string& component) {
  std::vector<const LoraPlan*> out;
  for (const auto& p : m.loras)
    if (p->component == component) out.push_back(p.get());
  return out;
}

std::set<std::string> lora_targets(const ModelManifest& m, const std::string& component) {
  std::set<std::string> out;
  for (const LoraPlan* p : loras_for(m, component))
    for (const LoraTerm& t : p->terms) out.insert(t.target);
  return out;
}

}  // namespace kino
