// What a LoRA file does to a model, read from its tensor names and shapes
// alone: which parameter each group of keys patches and how, the keys that
// match nothing, and a refusal (one line naming the file and tensor) when a
// patch does not fit the parameter's shape. No torch here: the merge itself
// is src/adapters/lora_merge.
//
// The rules are ComfyUI's (comfy/lora.py load_lora and model_lora_keys_unet,
// comfy/weight_adapter), recorded in ../shared/fixtures/wan-lora-tiny:
// targets `diffusion_model.P`, kohya `lora_unet_P` with '.' -> '_'
// (`lora_prior_unet_` too; Wan-Fun's `lora_unet__` read as `lora_unet_`),
// Diffusers/PEFT `transformer.P` in WanTransformer3DModel names (mapped by
// the family's Diffusers layout) and bare official names; per target the
// LoRA factors (lora_up/lora_down or lora_B/lora_A, optional alpha and
// dora_scale), LoHa (hada_w1_a ... hada_w2_b), LoKr (lokr_w1[_a,_b],
// lokr_w2[_a,_b]), `.diff` / `.diff_b` (a whole tensor added to the weight /
// bias), `.set_weight`, and PEFT's `lora_B.bias`.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kino/manifest.h"

namespace kino {

enum class LoraKind { LowRank, DoRA, LoHa, LoKr, Diff, SetWeight };

// One patch of one model parameter.
struct LoraTerm {
  LoraKind kind = LoraKind::LowRank;
  std::string target;                         // the official parameter name, e.g. "blocks.0.self_attn.q.weight"
  std::map<std::string, std::string> parts;   // role -> the file's key: up, down, alpha, dora_scale, w1_a, w1_b, w2_a,
                                              // w2_b (LoHa), w1, w1_a, w1_b, w2, w2_a, w2_b (LoKr), diff, set
};

// A LoRA file planned against one component of a model.
struct LoraPlan {
  LoraSpec spec;
  std::string component;  // "transformer" or "transformer_low_noise"
  std::string sha256;
  std::vector<LoraTerm> terms;         // in the order of the file's sorted keys
  std::vector<std::string> unmatched;  // the file's keys no rule used, sorted
};

// The model side of a plan: its official parameter names and their shapes
// (nullopt for a name the model does not have).
using ParameterShape = std::function<std::optional<std::vector<int64_t>>(const std::string& official)>;

// Plans `spec` (a .safetensors LoRA) for `component` of a `family` model
// whose parameters are `parameters`; kino::Error naming the file and key when
// a patch does not fit its parameter (a LoRA for another model).
LoraPlan plan_lora(const LoraSpec& spec, const std::string& component, const std::string& family,
                   const std::set<std::string>& parameters, const ParameterShape& shape_of);

// The LoRAs of `m` that patch `component` ("transformer" or
// "transformer_low_noise"), in order.
std::vector<const LoraPlan*> loras_for(const ModelManifest& m, const std::string& component);
// The official parameter names those LoRAs change.
std::set<std::string> lora_targets(const ModelManifest& m, const std::string& component);

}  // namespace kino
