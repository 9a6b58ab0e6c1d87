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

}  // namespace kino
