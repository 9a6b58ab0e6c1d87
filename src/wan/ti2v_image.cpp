#include "wan/ti2v_image.h"

#include <algorithm>
#include <cmath>

#include "kino/error.h"

namespace kino {

std::pair<int64_t, int64_t> best_output_size(int64_t w, int64_t h, int64_t dw, int64_t dh, int64_t expected_area) {
  const double area = static_cast<double>(expected_area), ratio = static_cast<double>(w) / static_cast<double>(h);
  const double ow = std::sqrt(area * ratio), oh = area / ow;
  // Width first, then height first (Python's // on floats: floor).
  const int64_t ow1 = static_cast<int64_t>(std::floor(ow / dw) * dw);
  const int64_t oh1 = static_cast<int64_t>(std::floor(area / static_cast<double>(ow1) / dh) * dh);
  const int64_t oh2 = static_cast<int64_t>(std::floor(oh / dh) * dh);
  const int64_t ow2 = static_cast<int64_t>(std::floor(area / static_cast<double>(oh2) / dw) * dw);
  if (ow1 <= 0 || oh1 <= 0 || ow2 <= 0 || oh2 <= 0)
    throw Error(concat("an image of ", w, "x", h, " has no output size in multiples of ", dw, " within ", expected_area, " pixels"));
  const double r1 = static_cast<double>(ow1) / static_cast<double>(oh1), r2 = static_cast<double>(ow2) / static_cast<double>(oh2);
  if (std::max(ratio / r1, r1 / ratio) < std::max(ratio / r2, r2 / ratio)) return {ow1, oh1};
  return {ow2, oh2};
}

Image prepare_first_frame(const Image& in, int64_t multiple, int64_t max_area) {
  const auto [ow, oh] = best_output_size(in.width, in.height, multiple, multiple, max_area);
  const double scale = std::max(static_cast<double>(ow) / static_cast<double>(in.width),
                                static_cast<double>(oh) / static_cast<double>(in.height));
  const int64_t rw = static_cast<int64_t>(std::nearbyint(static_cast<double>(in.width) * scale));
  const int64_t rh = static_cast<int64_t>(std::nearbyint(static_cast<double>(in.height) * scale));
  const Image big = resize_lanczos(in, rw, rh);
  const int64_t x0 = (rw - ow) / 2, y0 = (rh - oh) / 2;
  Image out;
  out.width = ow;
  out.height = oh;
  out.rgb.resize(static_cast<size_t>(ow * oh * 3));
  for (int64_t y = 0; y < oh; ++y)
    std::copy_n(&big.rgb[static_cast<size_t>(((y + y0) * rw + x0) * 3)], ow * 3, &out.rgb[static_cast<size_t>(y * ow * 3)]);
  return out;
}

}  // namespace kino
