// Memory a generation will need, estimated from the shapes before anything is
// allocated, against the memory this process may use: requests that cannot
// fit are refused up front, with sizes that would fit, instead of being
// killed by the OOM killer midway or swapping the machine to a halt.
// No torch here.
#pragma once
#include <cstdint>
#include <string>

namespace kino {

// The shapes the estimate needs (from the model's configs).
struct MemoryModel {
  int64_t weight_bytes = 0;  // every weight in its run dtype
  int64_t dit_dim = 0, dit_ffn = 0, dit_heads = 0;
  int64_t dit_hints = 0;  // VACE: hints [B, L, dim] held through the main blocks
  int64_t patch_t = 1, patch_h = 2, patch_w = 2;
  int64_t vae_dim = 0, vae_temporal = 4, vae_spatial = 8;
  int64_t vae_tile = 0;  // spatial decode tiles in pixels; 0: whole frames
  bool fused_attention = false;  // no [L, L] score matrix (libtorch 2.x SDPA)
};

struct MemoryRequest {
  int64_t width = 0, height = 0, frames = 0;
  bool guided = true;  // cond and uncond in one batch
  int64_t window_frames = 0;  // context windows: the frames the transformer sees at once (0: all)
};

// `r` at another width, the height following the aspect ratio (rounded to
// the model's size multiple).
MemoryRequest same_shape(const MemoryRequest& r, int64_t width, int64_t size_multiple);

// Peak bytes of one generation: weights, plus the larger of the transformer's
// activations and the VAE decoder's (they are never alive together), plus the
// decoded video. An estimate that errs high; see memory_budget.cpp.
int64_t estimate_peak_bytes(const MemoryModel& model, const MemoryRequest& request);

// What this process may still allocate: MemAvailable, lowered by a cgroup
// memory limit when there is one (containers, CI runners). -1 if unknown.
int64_t available_memory_bytes();

// Throws kino::Error when `request` needs more than `available` bytes: the
// message gives both, and the longest clip and the largest size of the same
// shape (width steps of `size_multiple`) that would fit (`frame_multiple`, `size_multiple`: the model's rules).
void check_fits(const MemoryModel& model, const MemoryRequest& request, int64_t available, int64_t frame_multiple,
                int64_t size_multiple);

std::string format_gb(int64_t bytes);

}  // namespace kino
