// Wan's key maps: the layouts users download Wan weights in, mapped onto the
// official names, for every component of the wan2.1 and wan2.2 families:
//  - official Wan-AI release (config.json WanModel, the DiT safetensors,
//    models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth);
//  - Diffusers (Diffusers names for the DiT and VAE, HuggingFace UMT5 names);
//  - ComfyUI single files: official DiT/VAE names (the DiT optionally under
//    `model.diffusion_model.`), HuggingFace UMT5 names, 16-bit or "scaled
//    fp8" weights, the tokenizer inside the text encoder (`spiece_model`).
// No torch here.
#pragma once
#include <deque>

#include "loading/layouts.h"

namespace kino::wan {

// The layouts of every (Wan family, component), for the registry.
std::deque<ComponentLayouts> layouts();

}  // namespace kino::wan
