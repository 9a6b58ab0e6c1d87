// The layouts users download weights in, registered per (family, component):
// each layout says whether it recognises a file's tensor names and how its
// names map onto the official ones; each component infers the config
// fields its tensor shapes decide. A file is recognised and translated once,
// when its manifest is read (WeightIndex), and loaded by those names.
// The families' key maps live in their folders (src/wan/layouts.cpp).
// No torch here.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/manifest.h"
#include "loading/tensor_file.h"

namespace kino {

using NameMap = std::map<std::string, std::string>;  // official name -> stored name

struct Layout {
  std::string name;  // "official", "diffusers", "comfyui", ...
  // Whether a file's stored names are in this layout (its naming is one
  // style throughout: recognised from all names at once).
  std::function<bool(const std::vector<std::string>& stored)> recognises;
  // A file's names -> official -> stored, for every weight. Stored tensors
  // that are not weights (fp8 scales and markers, an embedded tokenizer, a
  // tied copy) are left out; two stored names for one official name is a
  // kino::Error naming `where`.
  std::function<NameMap(const std::vector<std::string>& stored, const std::string& where)> official_names;
};

struct ComponentLayouts {
  std::string family, component;  // e.g. "wan2.1", "transformer"
  std::vector<Layout> layouts;     // tried in order
  // Config fields (the manifest's spelling) that follow from the shapes:
  // every field the shapes decide.
  std::function<nlohmann::json(const TensorSet& set, const NameMap& names)> infer_config;
  // Optional: fills what neither the manifest nor the shapes gave by the
  // family's rule, or refuses a config that needs the manifest's word.
  std::function<void(nlohmann::json& config, const std::string& where)> complete;
};

void register_layouts(ComponentLayouts layouts);
// The layouts of (family, component); kino::Error naming `where` if none.
const ComponentLayouts& component_layouts(const std::string& family, const std::string& component, const std::string& where);

// A component's weight file, read once by load_manifest: the layout its
// names are in, their official spelling, and what the weights weigh.
struct WeightIndex {
  std::string path, layout;
  NameMap names;
  int64_t floating_elements = 0;  // elements of floating tensors (their bytes follow the run dtype)
  int64_t fixed_bytes = 0;        // bytes of the others (integers, markers, weights kept quantised)
  std::map<std::string, int64_t> types;  // stored tensors per type name ("F16", "Q4_K", ...)
};

// The layout of (family, component) that recognises `stored` maps it.
NameMap official_names(const std::string& family, const std::string& component, const std::vector<std::string>& stored,
                       const std::string& where);
nlohmann::json infer_config(const std::string& family, const std::string& component, const TensorSet& set,
                            const NameMap& names);

// Opens `path`, picks the first layout of (family, component) that
// recognises its names, maps them; `config` gains the fields the shapes decide.
WeightIndex index_weights(const std::string& family, const std::string& component, const std::string& path,
                          nlohmann::json& config);
// The same without a config: the names only (tests, tools).
WeightIndex index_weights(const std::string& family, const std::string& component, const std::string& path);

// The names the fp8 scale of a stored weight may have (ComfyUI "scaled fp8":
// weight = float(code) * scale; `<layer>.scale_weight` in the legacy files,
// `<layer>.weight_scale` in the newer comfy_quant ones); none for a name
// without ".weight".
std::vector<std::string> fp8_scale_names(const std::string& stored_weight);

// The weights of a component given as a path: a weight file or index JSON
// as is; a folder (a Diffusers component folder) gives its
// `*.safetensors.index.json`, or its one `*.safetensors` file.
std::string component_weights(const std::string& path);

// Helpers for key maps: `s` starts with / ends with; the first of `rules`'
// prefixes that `s` starts with, replaced.
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
std::string replace_prefix(const std::string& s, const std::vector<std::pair<std::string, std::string>>& rules);
// "blocks.7.rest" -> ("7", "rest") for `head` = "blocks."; false if `s` is
// not of that form (or the index has more than 6 digits: no real model).
bool split_block(const std::string& s, const std::string& head, std::string& block, std::string& rest);
// An official tensor stored in parts (Hugging Face's q, k and v of CLIP's
// fused to_qkv): a layout maps part k to `official#k`, and Weights::take
// joins the parts along dimension 0 in k order.
std::string joined_part(const std::string& official, int k);

// Official names through `rename`, leaving out `skip`ped stored names;
// duplicates are an error naming `where`.
NameMap map_names(const std::vector<std::string>& stored, const std::string& where,
                  const std::function<std::string(const std::string&)>& rename,
                  const std::function<bool(const std::string&)>& skip);

}  // namespace kino
