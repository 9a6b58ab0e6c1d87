#include "kino/memory_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "kino/error.h"

namespace kino {

namespace {

constexpr int64_t kF32 = 4;

// A number from a one-line file such as memory.max ("max": unlimited).
int64_t read_number(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return -1;
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

MemoryRequest same_shape(const MemoryRequest& r, int64_t width, int64_t size_multiple) {
  MemoryRequest q = r;
  q.width = width;
  const double h = static_cast<double>(width) * static_cast<double>(r.height) / static_cast<double>(r.width);
  q.height = std::max<int64_t>(size_multiple, std::llround(h / static_cast<double>(size_multiple)) * size_multiple);
  return q;
}

int64_t estimate_peak_bytes(const MemoryModel& m, const MemoryRequest& r) {
  const int64_t B = r.guided ? 2 : 1;
  // Context windows: the transformer runs one window at a time.
  const int64_t dit_frames = r.window_frames > 0 ? std::min(r.window_frames, r.frames) : r.frames;
  const int64_t latent_frames = (dit_frames - 1) / m.vae_temporal + 1;
  const int64_t L = (latent_frames / m.patch_t) * (r.height / (m.vae_spatial * m.patch_h)) *
                    (r.width / (m.vae_spatial * m.patch_w));
  // Transformer: about ten float32 [B, L, max(dim, ffn)] tensors alive at once
  // (residual, modulated input, q/k/v, the feed-forward's hidden layer and
  // their float32 copies) and, without fused attention, the float32 scores,
  // their softmax and its cast: three [B, heads, L, L].
  const int64_t dit = 10 * B * L * std::max(m.dit_dim, m.dit_ffn) * kF32 +
                      (m.fused_attention ? 0 : 3 * B * m.dit_heads * L * L * kF32) + m.dit_hints * B * L * m.dit_dim * kF32;
  // VAE decoder: it decodes one latent frame (4 video frames) at a time with
  // 2 frames of causal cache; the widest full-resolution stage holds 2·dim
  // channels, and about four such tensors are alive in a residual block.
  // With tiles, one tile is decoded at a time.
  const int64_t th = m.vae_tile ? std::min(m.vae_tile, r.height) : r.height;
  const int64_t tw = m.vae_tile ? std::min(m.vae_tile, r.width) : r.width;
  const int64_t vae = 4 * 2 * m.vae_dim * (m.vae_temporal + 2) * th * tw * kF32;
  // The decoded video: float32 [3, F, H, W], then RGB24 twice (tensor, Video).
  // Decoded tiles overlap by a quarter on each axis: up to (4/3)^2 of the
  // float32 video is alive before they are blended.
  const int64_t pixels = r.frames * r.height * r.width * 3;
  const int64_t video = pixels * (kF32 + 2) + (m.vae_tile ? pixels * kF32 * 16 / 9 : 0);
  return m.weight_bytes + std::max(dit, vae) + video;
}

int64_t available_memory_bytes() {
  int64_t available = -1;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream in(line);
    std::string key;
    int64_t kb = 0;
    if (in >> key >> kb && key == "MemAvailable:") available = kb * 1024;
  }
  // cgroup v2, then v1: the limit minus what the group already uses.
  for (const auto& [limit_file, usage_file] :
       {std::pair<const char*, const char*>{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
        {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"}}) {
    const int64_t limit = read_number(limit_file), usage = read_number(usage_file);
    if (limit > 0 && usage >= 0 && limit < (int64_t{1} << 60)) {
      const int64_t left = std::max<int64_t>(0, limit - usage);
      available = available < 0 ? left : std::min(available, left);
      break;
    }
  }
  return available;
}

std::string format_gb(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

void check_fits(const MemoryModel& m, const MemoryRequest& r, int64_t available, int64_t frame_multiple,
                int64_t size_multiple) {
  if (available < 0) return;  // unknown: nothing to hold the request against
  const int64_t need = estimate_peak_bytes(m, r);
  if (need <= available) return;
  std::string msg = concat(r.width, "x", r.height, "x", r.frames, " needs about ", format_gb(need), " of memory, ",
                           format_gb(available), " are available");
  if (m.weight_bytes >= available) throw Error(concat(msg, " and the weights alone take ", format_gb(m.weight_bytes),
                                                      ": use a smaller --dtype or another --device"));
  // The longest clip at this size, and the largest size of this shape at this
  // length (both monotonic in the estimate).
  std::vector<std::string> fits;
  int64_t frames = 0;
  for (int64_t f = 1; f < r.frames; f += frame_multiple) {
    MemoryRequest q = r;
    q.frames = f;
    if (estimate_peak_bytes(m, q) > available) break;
    frames = f;
  }
  if (frames > 0) fits.push_back(concat("--frames ", frames));
  for (int64_t k = r.width / size_multiple - 1; k >= 1; --k) {
    const MemoryRequest q = same_shape(r, k * size_multiple, size_multiple);
    if (estimate_peak_bytes(m, q) <= available) {
      fits.push_back(concat("--size ", q.width, "x", q.height));
      break;
    }
  }
  msg += fits.empty() ? concat(": use another --device")
                      : concat(": try ", fits[0], fits.size() > 1 ? concat(" or ", fits[1]) : std::string(),
                               ", or another --device");
  throw Error(msg);
}

}  // namespace kino
