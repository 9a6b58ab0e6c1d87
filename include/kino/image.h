// Still images as model input (Wan2.2 TI2V image-to-video): reading any
// format FFmpeg decodes, and the official preprocessing, resampled exactly as
// PIL's Image.resize(..., LANCZOS) does. No torch here.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kino {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, RGB24
};

// The first frame of an image file (PNG, JPEG, WebP, ...) as RGB24; an
// unreadable or undecodable file is a kino::Error naming it.
Image read_image(const std::string& path);

// Wan2.2's best_output_size(w, h, dw, dh, expected_area): the size, in
// multiples of (dw, dh) and within expected_area pixels, whose aspect ratio
// is closest to w / h (width rounded first or height first, the better one).
std::pair<int64_t, int64_t> best_output_size(int64_t w, int64_t h, int64_t dw, int64_t dh, int64_t expected_area);

// PIL's Image.resize((width, height), Image.LANCZOS) on 8-bit RGB: separable
// Lanczos-3 (support widened by the scale when shrinking), horizontal pass
// first, 22-bit fixed-point weights, 8-bit rounding after each pass.
Image resize_lanczos(const Image& in, int64_t width, int64_t height);

// TI2V's preprocessing (textimage2video.py): the output size from
// best_output_size(iw, ih, multiple, multiple, max_area), the image scaled
// to cover it (sizes rounded half to even, as Python's round) and cropped
// at the centre.
Image prepare_first_frame(const Image& in, int64_t multiple, int64_t max_area);

}  // namespace kino
