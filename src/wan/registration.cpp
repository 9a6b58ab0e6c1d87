#include "wan/registration.h"

#include "kino/error.h"
#include "wan/configs.h"
#include "wan/generator.h"
#include "wan/i2v_inputs.h"
#include "wan/ti2v_image.h"
#include "wan/vace_inputs.h"

namespace kino::wan {

namespace {

ModelDescription describe(const ModelManifest& m) {
  const WanDiTConfig dit = dit_config(m);
  const WanVAEConfig vae = vae_config(m);
  if (dit.patch_size.size() != 3) throw Error(concat(m.path, " transformer: patch_size must have 3 entries"));
  ModelDescription d;
  d.family = m.family;
  d.task = m.task;
  d.frame_multiple = vae.temporal_stride();
  d.size_multiple = vae.spatial_stride() * dit.patch_size[1];
  d.text_len = dit.text_len;
  // Wan's releases are trained on 81-frame clips, TI2V-5B on 121.
  d.trained_frames = m.trained_frames ? m.trained_frames : m.task == "ti2v" ? 121 : 81;
  d.experts = m.transformer_low_noise.empty() ? 1 : 2;
  d.boundary_timestep = m.boundary_ratio * 1000;
  if (m.task == "ti2v") {
    if (d.experts > 1) throw Error(concat(m.path, ": a ti2v model has one transformer"));
    d.inputs = {"image"};
    // textimage2video.py: the output size follows the image's aspect ratio
    // within the default size's pixel count, whatever the size asked.
    const int64_t multiple = d.size_multiple, area = m.defaults.width * m.defaults.height;
    d.size_for_image = [multiple, area](int64_t w, int64_t h, int64_t) { return best_output_size(w, h, multiple, multiple, area); };
  } else if (m.task == "i2v" || m.task == "flf2v") {
    // image2video.py: the image's aspect ratio within the pixels asked
    // for (--size W x H is the area), the image resized, not cropped.
    d.inputs = d.needs = m.task == "flf2v" ? std::vector<std::string>{"image", "last_image"} : std::vector<std::string>{"image"};
    const int64_t stride = vae.spatial_stride(), patch = dit.patch_size[1];
    d.size_for_image = [stride, patch](int64_t w, int64_t h, int64_t area) { return i2v_output_size(w, h, area, stride, patch); };
  } else if (m.task == "vace") {
    if (!dit.vace_in_dim) throw Error(concat(m.path, ": a vace model needs a transformer with VACE blocks (vace_patch_embedding, vace_blocks)"));
    if (vae.wan22 || d.size_multiple != 16)
      throw Error(concat(m.path, ": VACE runs on the Wan2.1 VAE and 1x2x2 patches (frames are read in 16-pixel tokens)"));
    d.inputs = {"video", "mask", "references"};
    // prepare_source: the output follows the source video (VaceVideoProcessor).
    d.shape_for_video = [](int64_t frames, int64_t w, int64_t h, int64_t area) {
      const VaceSource s = vace_source(frames, w, h, area);
      return std::array<int64_t, 3>{s.frames, s.width, s.height};
    };
  } else if (dit.vace_in_dim) {
    throw Error(concat(m.path, ": the transformer has VACE blocks: its task is \"vace\", not \"", m.task, "\""));
  }
  d.cache_constants = cache_constants_name(m);
  MemoryModel& mem = d.memory;
  mem.dit_dim = dit.dim;
  mem.dit_ffn = dit.ffn_dim;
  mem.dit_heads = dit.num_heads;
  mem.dit_hints = static_cast<int64_t>(dit.vace_layers.size());
  mem.patch_t = dit.patch_size[0];
  mem.patch_h = dit.patch_size[1];
  mem.patch_w = dit.patch_size[2];
  // Wan2.2's decoder ends at half resolution (then the pixel unpatchify):
  // its widest full-frame stage is dec_dim / 2 channels per full-size pixel.
  mem.vae_dim = vae.decoder_dim() / vae.patch();
  mem.vae_temporal = vae.temporal_stride();
  mem.vae_spatial = vae.spatial_stride();
  return d;
}

std::unique_ptr<VideoModel> create(const ModelManifest& m, const LoadOptions& o) {
  return std::make_unique<WanGenerator>(m, o);
}

}  // namespace

std::vector<ModelEntry> models() {
  return {{"wan2.1", "t2v", describe, create},  {"wan2.1", "i2v", describe, create}, {"wan2.1", "flf2v", describe, create},
          {"wan2.1", "vace", describe, create},
          {"wan2.2", "t2v", describe, create},  {"wan2.2", "ti2v", describe, create}, {"wan2.2", "i2v", describe, create}};
}

}  // namespace kino::wan
