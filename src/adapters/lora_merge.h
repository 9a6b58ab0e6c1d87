// LoRAs merged into a transformer's weights as they load: the one call site
// is Weights::take, which hands each tensor, in float32, to the patch made
// here; the result is rounded once to the run's dtype. The math of each kind
// is ComfyUI's (comfy/weight_adapter: lora.py, loha.py, lokr.py, base.py
// weight_decompose), as ../shared/fixtures/wan-lora-tiny records it.
#pragma once
#include <string>

#include "kino/manifest.h"
#include "loading/weights.h"

namespace kino {

// Every LoRA of `m` for `component` ("transformer" or
// "transformer_low_noise"), in order; nothing to do when there are none.
WeightPatch lora_patch(const ModelManifest& m, const std::string& component);
// The same LoRAs unmerged, for weights that stay quantised: on a weight
// that only plain low-rank pairs patch, each pair as a LowRankDelta (scale
// strength · alpha / rank); empty for any other.
LowRankSource lora_low_rank(const ModelManifest& m, const std::string& component);

}  // namespace kino
