#include "wan/layouts.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "kino/error.h"

namespace kino::wan {

namespace {

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

// Stored tensors that are not weights: fp8 scales in ComfyUI's legacy
// (scale_weight, scale_input, the scaled_fp8 marker) and newer
// (weight_scale, input_scale, comfy_quant) spellings, the embedded tokenizer.
bool is_auxiliary(const std::string& n) {
  for (const char* suffix : {".scale_weight", ".scale_input", ".weight_scale", ".input_scale", ".comfy_quant"})
    if (ends_with(n, suffix)) return true;
  return n == "scaled_fp8" || n == "spiece_model";
}

// A Diffusers transformer block's leaf -> official; VACE blocks' proj_in
// and proj_out are before_proj and after_proj.
std::string block_from_diffusers(const std::string& leaf) {
  if (leaf == "scale_shift_table") return "modulation";
  std::string rest = replace_prefix(leaf, {{"attn1.", "self_attn."}, {"attn2.", "cross_attn."}, {"norm2.", "norm3."},
                                           {"ffn.net.0.proj.", "ffn.0."}, {"ffn.net.2.", "ffn.2."},
                                           {"proj_in.", "before_proj."}, {"proj_out.", "after_proj."}});
  for (const char* attn : {"self_attn.", "cross_attn."})
    if (starts_with(rest, attn)) {
      const std::string a = attn;
      rest = a + replace_prefix(rest.substr(a.size()), {{"to_q.", "q."},
                                                       {"to_k.", "k."},
                                                       {"to_v.", "v."},
                                                       {"to_out.0.", "o."},
                                                       {"add_k_proj.", "k_img."},
                                                       {"add_v_proj.", "v_img."},
                                                       {"norm_added_k.", "norm_k_img."}});
    }
  return rest;
}

// Diffusers WanTransformer3DModel / WanVACETransformer3DModel -> official
// (the inverse of convert_wan_to_diffusers.py's renames).
std::string dit_from_diffusers(const std::string& n) {
  if (n == "scale_shift_table") return "head.modulation";
  std::string i, rest;
  for (const std::string blocks : {"blocks.", "vace_blocks."})
    if (split_block(n, blocks, i, rest)) return blocks + i + "." + block_from_diffusers(rest);
  return replace_prefix(n, {{"condition_embedder.text_embedder.linear_1.", "text_embedding.0."},
                            {"condition_embedder.text_embedder.linear_2.", "text_embedding.2."},
                            {"condition_embedder.time_embedder.linear_1.", "time_embedding.0."},
                            {"condition_embedder.time_embedder.linear_2.", "time_embedding.2."},
                            {"condition_embedder.time_proj.", "time_projection.1."},
                            {"condition_embedder.image_embedder.norm1.", "img_emb.proj.0."},
                            {"condition_embedder.image_embedder.ff.net.0.proj.", "img_emb.proj.1."},
                            {"condition_embedder.image_embedder.ff.net.2.", "img_emb.proj.3."},
                            {"condition_embedder.image_embedder.norm2.", "img_emb.proj.4."},
                            {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
                            {"proj_out.", "head.head."}});
}

// HuggingFace (U)T5EncoderModel -> Wan's T5Encoder.
std::string umt5_from_hf(const std::string& n) {
  if (n == "shared.weight" || n == "encoder.embed_tokens.weight") return "token_embedding.weight";
  if (n == "encoder.final_layer_norm.weight") return "norm.weight";
  std::string i, rest;
  if (!split_block(n, "encoder.block.", i, rest)) return n;
  return "blocks." + i + "." +
         replace_prefix(rest, {{"layer.0.layer_norm.", "norm1."},
                               {"layer.0.SelfAttention.relative_attention_bias.", "pos_embedding.embedding."},
                               {"layer.0.SelfAttention.", "attn."},
                               {"layer.1.layer_norm.", "norm2."},
                               {"layer.1.DenseReluDense.wi_0.", "ffn.gate.0."},
                               {"layer.1.DenseReluDense.wi_1.", "ffn.fc1."},
                               {"layer.1.DenseReluDense.wo.", "ffn.fc2."}});
}

// llama.cpp's t5encoder names (GGUF files, e.g. city96's umt5-xxl-encoder
// GGUFs; convert_hf_to_gguf.py T5EncoderModel) -> Wan's T5Encoder.
std::string umt5_from_llama_cpp(const std::string& n) {
  if (n == "token_embd.weight") return "token_embedding.weight";
  if (n == "enc.output_norm.weight") return "norm.weight";
  std::string i, rest;
  if (!split_block(n, "enc.blk.", i, rest)) return n;
  return "blocks." + i + "." +
         replace_prefix(rest, {{"attn_norm.", "norm1."},
                               {"attn_rel_b.", "pos_embedding.embedding."},
                               {"attn_q.", "attn.q."},
                               {"attn_k.", "attn.k."},
                               {"attn_v.", "attn.v."},
                               {"attn_o.", "attn.o."},
                               {"ffn_norm.", "norm2."},
                               {"ffn_gate.", "ffn.gate.0."},
                               {"ffn_up.", "ffn.fc1."},
                               {"ffn_down.", "ffn.fc2."}});
}

// A Diffusers residual block's leaf -> the official `residual.N` / `shortcut`.
std::string vae_residual(const std::string& leaf) {
  return replace_prefix(leaf, {{"norm1.", "residual.0."}, {"conv1.", "residual.2."}, {"norm2.", "residual.3."},
                               {"conv2.", "residual.6."}, {"conv_shortcut.", "shortcut."}});
}

// Resnets per level of a Diffusers Wan2.2 VAE ("encoder.down_blocks.0" -> 2),
// counted from the stored names; empty for a Wan2.1 one, whose down_blocks
// are flat.
using LevelSizes = std::map<std::string, int>;
LevelSizes nested_levels(const std::vector<std::string>& stored) {
  LevelSizes levels;
  for (const auto& n : stored)
    for (const std::string blocks : {"encoder.down_blocks.", "decoder.up_blocks."}) {
      std::string x, rest, y, leaf;
      if (split_block(n, blocks, x, rest) && split_block(rest, "resnets.", y, leaf)) {
        int& count = levels[blocks + x];
        count = std::max(count, std::stoi(y) + 1);
      }
    }
  // Wan2.1's decoder levels have resnets too; its encoder levels are flat.
  const bool nested = std::any_of(levels.begin(), levels.end(), [](const auto& l) { return starts_with(l.first, "encoder."); });
  return nested ? levels : LevelSizes{};
}

// Diffusers AutoencoderKLWan -> official WanVAE_ (convert_vae() inverted).
// The decoder's up_blocks hold num_res_blocks + 1 resnets and an upsampler,
// flattened officially into runs of num_res_blocks + 2 entries. With `nested`
// levels (Wan2.2, is_residual: convert_vae_22() inverted) each level keeps its
// own list, vae2_2.py's `downsamples` / `upsamples`: `X.resnets.Y` -> `X.
// {down,up}samples.Y`, and the level's resampler, stored without an index,
// follows its resnets.
std::string vae_from_diffusers(const std::string& n, const LevelSizes& nested) {
  constexpr int kPerUpBlock = 2 + 2;  // Wan2.1's VAE: num_res_blocks = 2
  const std::string top = replace_prefix(n, {{"quant_conv.", "conv1."}, {"post_quant_conv.", "conv2."}});
  if (top != n) return top;
  for (const std::string part : {"encoder.", "decoder."}) {
    if (!starts_with(n, part)) continue;
    const std::string rest = n.substr(part.size());
    std::string i, leaf, r, l;
    if (split_block(rest, "mid_block.resnets.", i, leaf)) return part + "middle." + (i == "0" ? "0." : "2.") + vae_residual(leaf);
    if (starts_with(rest, "mid_block.attentions.0.")) return part + "middle.1." + rest.substr(23);
    if (!nested.empty()) {
      for (const auto& [blocks, official, resampler] :
           {std::array<std::string, 3>{"down_blocks.", "downsamples.", "downsampler."}, {"up_blocks.", "upsamples.", "upsampler."}}) {
        if (!split_block(rest, blocks, i, leaf)) continue;
        const std::string level = part + official + i + "." + official;
        if (split_block(leaf, "resnets.", r, l)) return level + r + "." + vae_residual(l);
        auto size = nested.find(part + blocks + i);
        if (starts_with(leaf, resampler) && size != nested.end())
          return level + std::to_string(size->second) + "." + leaf.substr(resampler.size());
      }
    } else if (split_block(rest, "down_blocks.", i, leaf)) {
      return part + "downsamples." + i + "." + vae_residual(leaf);
    } else if (split_block(rest, "up_blocks.", i, leaf)) {
      const int base = std::stoi(i) * kPerUpBlock;
      if (split_block(leaf, "resnets.", r, l)) return part + "upsamples." + std::to_string(base + std::stoi(r)) + "." + vae_residual(l);
      if (starts_with(leaf, "upsamplers.0."))
        return part + "upsamples." + std::to_string(base + kPerUpBlock - 1) + "." + leaf.substr(13);
    }
    return part + replace_prefix(rest, {{"conv_in.", "conv1."}, {"norm_out.", "head.0."}, {"conv_out.", "head.2."}});
  }
  return n;
}

const TensorView& need(const TensorSet& set, const NameMap& names, const std::string& official,
                       size_t rank) {
  auto it = names.find(official);
  const TensorView* v = it == names.end() ? nullptr : set.find(it->second);
  if (!v) throw Error(concat(set.path(), ": tensor '", official, "' not found (is this the right component?)"));
  if (v->shape.size() != rank)
    throw Error(concat(set.file_of(it->second), ": tensor '", it->second, "' has ", v->shape.size(), " dimensions, expected ", rank));
  return *v;
}

int64_t count_blocks(const NameMap& names, const std::string& head, const std::string& leaf) {
  int64_t n = 0;
  while (names.count(concat(head, n, ".", leaf))) ++n;
  return n;
}

using Names = std::vector<std::string>;

bool any_of(const Names& stored, const std::function<bool(const std::string&)>& pred) {
  return std::any_of(stored.begin(), stored.end(), pred);
}

// A layout whose names `rename` maps, auxiliary tensors left out.
Layout renaming(std::string name, std::function<bool(const Names&)> recognises,
                std::function<std::function<std::string(const std::string&)>(const Names&)> renamer) {
  return {std::move(name), std::move(recognises), [renamer](const Names& stored, const std::string& where) {
            return map_names(stored, where, renamer(stored), is_auxiliary);
          }};
}

auto identity = [](const Names&) { return [](const std::string& n) { return n; }; };
auto always = [](const Names&) { return true; };

const std::string kComfyPrefix = "model.diffusion_model.";

bool is_diffusers_dit(const std::string& n) { return contains(n, "condition_embedder.") || contains(n, ".attn1."); }
std::string strip_comfy(const std::string& n) { return starts_with(n, kComfyPrefix) ? n.substr(kComfyPrefix.size()) : n; }

ComponentLayouts transformer(const std::string& family) {
  ComponentLayouts c;
  c.family = family;
  c.component = "transformer";
  // Diffusers names, also under ComfyUI's prefix.
  c.layouts.push_back(renaming("diffusers", [](const Names& s) { return any_of(s, is_diffusers_dit); }, [](const Names&) {
    return [](const std::string& n) { return dit_from_diffusers(strip_comfy(n)); };
  }));
  c.layouts.push_back(renaming(
      "comfyui", [](const Names& s) { return any_of(s, [](const std::string& n) { return starts_with(n, kComfyPrefix); }); },
      [](const Names&) { return strip_comfy; }));
  c.layouts.push_back(renaming("official", always, identity));
  c.infer_config = [](const TensorSet& set, const NameMap& names) {
    nlohmann::json j;
  const auto& patch = need(set, names, "patch_embedding.weight", 5).shape;
  j["dim"] = patch[0];
  j["in_dim"] = patch[1];
  j["patch_size"] = {patch[2], patch[3], patch[4]};
  j["text_dim"] = need(set, names, "text_embedding.0.weight", 2).shape[1];
  j["freq_dim"] = need(set, names, "time_embedding.0.weight", 2).shape[1];
  j["ffn_dim"] = need(set, names, "blocks.0.ffn.0.weight", 2).shape[0];
  j["num_layers"] = count_blocks(names, "blocks.", "modulation");
  const int64_t per_token = need(set, names, "head.head.weight", 2).shape[0], cells = patch[2] * patch[3] * patch[4];
  if (per_token % cells) throw Error(concat(set.path(), ": head.head.weight rows ", per_token, " are not a multiple of the patch's ", cells));
  j["out_dim"] = per_token / cells;
  j["qk_norm"] = names.count("blocks.0.self_attn.norm_q.weight") > 0;
  j["cross_attn_norm"] = names.count("blocks.0.norm3.weight") > 0;
  // I2V/FLF2V: the CLIP width img_emb projects from, FLF2V's image positions.
  if (names.count("img_emb.proj.1.weight")) j["image_dim"] = need(set, names, "img_emb.proj.1.weight", 2).shape[1];
  if (names.count("img_emb.emb_pos")) j["image_pos_tokens"] = need(set, names, "img_emb.emb_pos", 3).shape[1];
  // VACE: the context's channels, and its blocks spread evenly over the main
  // ones (VaceWanModel's default for the 1.3B, [0, 2, ..., 28]; the 14B's
  // [0, 5, ..., 35]) unless a config.json or kino.json says otherwise.
  if (names.count("vace_patch_embedding.weight")) {
    j["vace_in_dim"] = need(set, names, "vace_patch_embedding.weight", 5).shape[1];
    const int64_t n = count_blocks(names, "vace_blocks.", "modulation"), layers = j["num_layers"].get<int64_t>();
    if (n < 1 || n > layers) throw Error(concat(set.path(), ": ", n, " VACE blocks for ", layers, " transformer blocks"));
    std::vector<int64_t> spread;
    for (int64_t k = 0; k < n; ++k) spread.push_back(k * (layers / n));
    j["vace_layers"] = spread;
  }
    return j;
  };
  // Every released Wan DiT has heads of 128 channels.
  c.complete = [](nlohmann::json& config, const std::string& where) {
    if (config.contains("num_heads")) return;
    const int64_t dim = config.at("dim").get<int64_t>();
    if (dim % 128) throw Error(concat(where, ": dim ", dim, " is not a multiple of 128: give transformer.config.num_heads in a kino.json"));
    config["num_heads"] = dim / 128;
  };
  return c;
}

ComponentLayouts text_encoder(const std::string& family) {
  ComponentLayouts c;
  c.family = family;
  c.component = "text_encoder";
  // HuggingFace's UMT5EncoderModel; a tied copy of the token embedding
  // (encoder.embed_tokens beside shared) is left out.
  c.layouts.push_back({"huggingface",
                       [](const Names& s) {
                         return any_of(s, [](const std::string& n) { return starts_with(n, "encoder.block.") || n == "shared.weight"; });
                       },
                       [](const Names& stored, const std::string& where) {
                         const bool tied = std::find(stored.begin(), stored.end(), "shared.weight") != stored.end();
                         return map_names(stored, where, umt5_from_hf, [tied](const std::string& n) {
                           return is_auxiliary(n) || (tied && n == "encoder.embed_tokens.weight");
                         });
                       }});
  c.layouts.push_back(renaming(
      "llama.cpp",
      [](const Names& s) { return any_of(s, [](const std::string& n) { return starts_with(n, "enc.blk.") || n == "token_embd.weight"; }); },
      [](const Names&) { return umt5_from_llama_cpp; }));
  c.layouts.push_back(renaming("official", always, identity));
  c.infer_config = [](const TensorSet& set, const NameMap& names) {
    nlohmann::json j;
  const auto& emb = need(set, names, "token_embedding.weight", 2).shape;
  j["vocab"] = emb[0];
  j["dim"] = emb[1];
  j["dim_attn"] = need(set, names, "blocks.0.attn.q.weight", 2).shape[0];
  j["dim_ffn"] = need(set, names, "blocks.0.ffn.fc1.weight", 2).shape[0];
  j["num_layers"] = count_blocks(names, "blocks.", "norm1.weight");
  const bool shared = names.count("pos_embedding.embedding.weight") > 0;
  const auto& pos = need(set, names, shared ? "pos_embedding.embedding.weight" : "blocks.0.pos_embedding.embedding.weight", 2).shape;
  j["shared_pos"] = shared;
  j["num_buckets"] = pos[0];
  j["num_heads"] = pos[1];
    return j;
  };
  return c;
}

ComponentLayouts vae(const std::string& family) {
  ComponentLayouts c;
  c.family = family;
  c.component = "vae";
  c.layouts.push_back(renaming(
      "diffusers",
      [](const Names& s) { return any_of(s, [](const std::string& n) { return starts_with(n, "quant_conv.") || contains(n, ".mid_block."); }); },
      [](const Names& stored) {
        return [nested = nested_levels(stored)](const std::string& n) { return vae_from_diffusers(n, nested); };
      }));
  c.layouts.push_back(renaming("official", always, identity));
  c.infer_config = [](const TensorSet& set, const NameMap& names) {
    nlohmann::json j;
  j["dim"] = need(set, names, "encoder.conv1.weight", 5).shape[0];
  j["z_dim"] = need(set, names, "conv2.weight", 5).shape[0];
  // Wan2.2 (vae2_2.py) nests its blocks per level and has its own decoder width.
  if (names.count("encoder.downsamples.0.downsamples.0.residual.0.gamma")) {
    j["is_residual"] = true;
    j["dec_dim"] = need(set, names, "decoder.head.0.gamma", 4).shape[0];
  }
    return j;
  };
  return c;
}

// Hugging Face CLIPVisionModel -> clip.py's VisionTransformer (the inverse
// of transformers' convert_clip_original_pytorch_to_hf.py: its q, k and v
// are the thirds of to_qkv). Diffusers' image_encoder/ and ComfyUI's
// clip_vision_h.safetensors are in these names.
std::string clip_from_hf(const std::string& n) {
  const std::string v = replace_prefix(n, {{"vision_model.", ""}});
  std::string i, rest;
  if (split_block(v, "encoder.layers.", i, rest)) {
    for (const auto& [part, k] : {std::pair<const char*, int>{"self_attn.q_proj.", 0}, {"self_attn.k_proj.", 1}, {"self_attn.v_proj.", 2}})
      if (starts_with(rest, part)) return joined_part("transformer." + i + ".attn.to_qkv." + rest.substr(std::string(part).size()), k);
    return "transformer." + i + "." +
           replace_prefix(rest, {{"layer_norm1.", "norm1."}, {"layer_norm2.", "norm2."}, {"self_attn.out_proj.", "attn.proj."},
                                 {"mlp.fc1.", "mlp.0."}, {"mlp.fc2.", "mlp.2."}});
  }
  if (v == "embeddings.class_embedding") return "cls_embedding";
  if (v == "embeddings.position_embedding.weight") return "pos_embedding";
  return replace_prefix(v, {{"embeddings.patch_embedding.", "patch_embedding."}, {"pre_layrnorm.", "pre_norm."}});
}

// The number of the vision tower's last block in `stored` (`layers` is its
// list's prefix).
int64_t last_block(const Names& stored, const std::string& layers) {
  int64_t n = -1;
  for (const auto& name : stored) {
    std::string i, rest;
    if (split_block(name, layers, i, rest)) n = std::max<int64_t>(n, std::stoll(i));
  }
  return n;
}

// The CLIP image encoder's weights, from the official checkpoint
// (models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth, both towers:
// the vision tower's names without "visual.") or in Hugging Face's names.
// Left out is what the encoder never runs: the text tower, log_scale, the
// last block (the features are the penultimate block's), the final norm and
// the projection head.
ComponentLayouts image_encoder(const std::string& family) {
  ComponentLayouts c;
  c.family = family;
  c.component = "image_encoder";
  c.layouts.push_back({"official",
                       [](const Names& s) { return any_of(s, [](const std::string& n) { return starts_with(n, "visual."); }); },
                       [](const Names& stored, const std::string& where) {
                         const std::string last = concat("visual.transformer.", last_block(stored, "visual.transformer."), ".");
                         return map_names(
                             stored, where, [](const std::string& n) { return n.substr(7); },
                             [&](const std::string& n) {
                               return !starts_with(n, "visual.") || starts_with(n, last) || starts_with(n, "visual.post_norm.") ||
                                      starts_with(n, "visual.head");
                             });
                       }});
  c.layouts.push_back({"huggingface",
                       [](const Names& s) { return any_of(s, [](const std::string& n) { return contains(n, "encoder.layers."); }); },
                       [](const Names& stored, const std::string& where) {
                         const std::string prefix = any_of(stored, [](const std::string& n) { return starts_with(n, "vision_model."); })
                                                        ? "vision_model."
                                                        : "";
                         const std::string last = concat(prefix, "encoder.layers.", last_block(stored, prefix + "encoder.layers."), ".");
                         return map_names(stored, where, clip_from_hf, [&](const std::string& n) {
                           return !starts_with(n, prefix) || starts_with(n, last) || starts_with(n, prefix + "post_layernorm.") ||
                                  n == prefix + "embeddings.position_ids" || starts_with(n, "visual_projection.") ||
                                  starts_with(n, "text_model.") || n == "logit_scale";
                         });
                       }});
  c.infer_config = [](const TensorSet& set, const NameMap& names) {
    nlohmann::json j;
    const auto& patch = need(set, names, "patch_embedding.weight", 4).shape;
    j["dim"] = patch[0];
    j["patch_size"] = patch[2];
    j["num_layers"] = count_blocks(names, "transformer.", "norm1.weight") + 1;  // the last block is left out above
    auto pos = names.find("pos_embedding");
    const TensorView* table = pos == names.end() ? nullptr : set.find(pos->second);
    if (!table || table->shape.size() < 2 || table->shape.size() > 3 || (table->shape.size() == 3 && table->shape[0] != 1))
      throw Error(concat(set.path(), ": the CLIP position table (pos_embedding) is missing or not [1 + positions, dim]"));
    const int64_t positions = table->shape[table->shape.size() - 2] - 1;
    const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(positions))));
    if (grid * grid != positions) throw Error(concat(set.path(), ": pos_embedding has ", positions + 1, " rows, not 1 + a square"));
    j["image_size"] = grid * patch[2];
    j["mlp_ratio"] = need(set, names, "transformer.0.mlp.0.weight", 2).shape[0] / patch[0];
    return j;
  };
  // ViT-H/14 has heads of 80 channels.
  c.complete = [](nlohmann::json& config, const std::string& where) {
    if (config.contains("num_heads")) return;
    const int64_t dim = config.at("dim").get<int64_t>();
    if (dim % 80) throw Error(concat(where, ": CLIP dim ", dim, " is not a multiple of 80: give image_encoder.config.num_heads in a kino.json"));
    config["num_heads"] = dim / 80;
  };
  return c;
}

}  // namespace

std::deque<ComponentLayouts> layouts() {
  std::deque<ComponentLayouts> out;
  for (const char* family : {"wan2.1", "wan2.2"})
    for (auto make : {transformer, text_encoder, vae}) out.push_back(make(family));
  out.push_back(image_encoder("wan2.1"));
  return out;
}

}  // namespace kino::wan
