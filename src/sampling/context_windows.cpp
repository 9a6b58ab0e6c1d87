#include "sampling/context_windows.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kino/error.h"

namespace kino {

namespace {

// ordered_halving: the step's 64 bits reversed, over 2^64 (0, 1/2, 1/4, 3/4, ...).
double ordered_halving(uint64_t step) {
  uint64_t reversed = 0;
  for (int b = 0; b < 64; ++b) reversed |= ((step >> b) & 1u) << (63 - b);
  return std::ldexp(static_cast<double>(reversed), -64);
}

std::vector<int64_t> run(int64_t from, int64_t length) {
  std::vector<int64_t> w(static_cast<size_t>(length));
  std::iota(w.begin(), w.end(), from);
  return w;
}

// The windows of stride 1 starting at pad + k (length - overlap), taken
// modulo `frames`, until `end` (exclusive, before the padding).
std::vector<std::vector<int64_t>> wrapping(int64_t frames, int64_t length, int64_t overlap, int64_t step, int64_t end) {
  const auto pad = static_cast<int64_t>(std::nearbyint(static_cast<double>(frames) * ordered_halving(static_cast<uint64_t>(step))));
  std::vector<std::vector<int64_t>> out;
  for (int64_t j = pad; j < end + pad; j += length - overlap) {
    std::vector<int64_t> w;
    for (int64_t e = j; e < j + length; ++e) w.push_back(e % frames);
    out.push_back(w);
  }
  return out;
}

}  // namespace

ContextWindows ContextWindows::from_spec(const WindowSpec& spec, int64_t stride) {
  ContextWindows c;
  c.schedule = spec.schedule;
  c.fuse = spec.fuse;
  c.freenoise = spec.freenoise;
  if (spec.schedule == WindowSpec::Schedule::None || spec.schedule == WindowSpec::Schedule::Auto) return c;
  c.length = (spec.length - 1) / stride + 1;
  c.overlap = spec.overlap > 0 ? (spec.overlap - 1) / stride + 1 : 0;
  if (c.overlap >= c.length) throw Error(concat("context windows: overlap ", c.overlap, " >= length ", c.length, " latent frames"));
  return c;
}

std::vector<std::vector<int64_t>> ContextWindows::windows(int64_t frames, int64_t step) const {
  if (!active(frames)) return {run(0, frames)};
  const int64_t delta = length - overlap;
  std::vector<std::vector<int64_t>> out;
  switch (schedule) {
    case WindowSpec::Schedule::Static:
      // create_windows_static_standard
      for (int64_t start = 0; start < frames; start += delta) {
        if (start + length >= frames) {
          out.push_back(run(frames - length, length));
          break;
        }
        out.push_back(run(start, length));
      }
      return out;
    case WindowSpec::Schedule::Looped:
      // create_windows_uniform_looped with closed_loop: windows wrap around.
      return wrapping(frames, length, overlap, step, frames);
    case WindowSpec::Schedule::Uniform: {
      // create_windows_uniform_standard: a window that wraps moves to the
      // end; a window starting where it wrapped is added when the next
      // lacks that frame; repeats are dropped.
      out = wrapping(frames, length, overlap, step, frames - overlap);
      std::vector<std::vector<int64_t>> kept;
      for (size_t i = 0; i < out.size(); ++i) {
        std::vector<int64_t>& w = out[i];
        const auto roll = std::adjacent_find(w.begin(), w.end(), [](int64_t a, int64_t b) { return b < a; });
        if (roll != w.end()) {
          const int64_t roll_value = *(roll + 1);
          w = run(frames - length, length);  // shift_window_to_end (stride 1)
          const std::vector<int64_t>& next = out[(i + 1) % out.size()];
          if (std::find(next.begin(), next.end(), roll_value) == next.end())
            out.insert(out.begin() + static_cast<std::ptrdiff_t>(i) + 1, run(roll_value, length));
        }
      }
      for (const auto& w : out)
        if (std::find(kept.begin(), kept.end(), w) == kept.end()) kept.push_back(w);
      return kept;
    }
    case WindowSpec::Schedule::Auto:
    case WindowSpec::Schedule::None: break;
  }
  return {run(0, frames)};
}

std::vector<double> ContextWindows::weights(const std::vector<int64_t>& window, int64_t frames) const {
  const auto n = static_cast<int64_t>(window.size());
  std::vector<double> w(static_cast<size_t>(n), 1.0);
  if (fuse == WindowSpec::Fuse::Pyramid) {
    // create_weights_pyramid: distance from the nearer edge, from 1.
    for (int64_t i = 0; i < n; ++i) w[static_cast<size_t>(i)] = static_cast<double>(std::min(i + 1, n - i));
  } else if (fuse == WindowSpec::Fuse::Linear && overlap > 0) {
    // create_weights_overlap_linear: torch.linspace(1e-37, 1, overlap) in,
    // its reverse out, on the sides that have a neighbouring window.
    auto ramp = [&](int64_t k) { return overlap == 1 ? 1e-37 : 1e-37 + (1 - 1e-37) * static_cast<double>(k) / static_cast<double>(overlap - 1); };
    const auto [lo, hi] = std::minmax_element(window.begin(), window.end());
    if (*lo > 0)
      for (int64_t k = 0; k < overlap; ++k) w[static_cast<size_t>(k)] = ramp(k);
    if (*hi < frames - 1)
      for (int64_t k = 0; k < overlap; ++k) w[static_cast<size_t>(n - 1 - k)] = ramp(k);
  }
  return w;
}

std::vector<int64_t> ContextWindows::freenoise_sources(int64_t frames, uint64_t seed) const {
  std::vector<int64_t> source = run(0, frames);
  if (!freenoise || !active(frames)) return source;
  std::mt19937_64 rng(seed);
  const int64_t delta = length - overlap;
  for (int64_t start = 0; start < frames - length; start += delta) {
    const int64_t place = start + length, count = std::min(delta, frames - place);
    if (count <= 0) break;
    std::vector<int64_t> perm = run(start, count);
    std::shuffle(perm.begin(), perm.end(), rng);
    const std::vector<int64_t> before = source;
    for (int64_t k = 0; k < count; ++k) source[static_cast<size_t>(place + k)] = before[static_cast<size_t>(perm[static_cast<size_t>(k)])];
  }
  return source;
}

}  // namespace kino
