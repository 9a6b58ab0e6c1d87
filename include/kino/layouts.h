// The layouts users download Wan weights in, mapped onto the official one:
//  - official Wan-AI release: a folder with config.json (WanModel), the DiT
//    safetensors, models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth and
//    google/umt5-xxl/spiece.model;
//  - Diffusers: a folder with model_index.json and one folder per component
//    (Diffusers names for the DiT and VAE, HuggingFace UMT5 names);
//  - ComfyUI single files: official DiT/VAE names (the DiT optionally under
//    `model.diffusion_model.`), HuggingFace UMT5 names, 16-bit or "scaled
//    fp8" weights, the tokenizer inside the text encoder (`spiece_model`).
// Names are translated per file (official_names), configs follow from the
// tensor shapes (infer_config). No torch here.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/tensor_file.h"

namespace kino {

enum class Component { TextEncoder, Transformer, Vae };

// Official name -> stored name for every weight of one component's files,
// whatever their layout. Stored tensors that are not weights (fp8 scales and
// markers, the embedded tokenizer) are left out; so is a tied copy of the
// token embedding. Two stored names for one official name is an error.
std::map<std::string, std::string> official_names(Component c, const std::vector<std::string>& stored,
                                                  const std::string& where);

// The names the fp8 scale of a stored weight may have (ComfyUI "scaled fp8":
// weight = float(code) * scale; `<layer>.scale_weight` in the legacy files,
// `<layer>.weight_scale` in the newer comfy_quant ones); none for a name
// without ".weight".
std::vector<std::string> fp8_scale_names(const std::string& stored_weight);

// Config fields (the manifest's spelling, see README) that follow from the
// shapes of `set`'s tensors: every field the shapes decide. Fields they
// cannot decide (DiT num_heads and text_len) are left out.
nlohmann::json infer_config(Component c, const TensorSet& set, const std::map<std::string, std::string>& names);

// The weights of a component given as a path: a weight file or index JSON
// as is; a folder (a Diffusers component folder) gives its
// `*.safetensors.index.json`, or its one `*.safetensors` file.
std::string component_weights(const std::string& path);

// Wan's default negative prompt (wan/configs/shared_config.py).
extern const char* const kWanNegativePrompt;

}  // namespace kino
