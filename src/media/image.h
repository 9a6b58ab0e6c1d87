// Still images as model input: reading any format FFmpeg decodes, and
// resampling exactly as PIL's Image.resize(..., LANCZOS) does. No torch here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kino {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, RGB24
};

// The first frame of an image file (PNG, JPEG, WebP, ...) as RGB24; an
// unreadable or undecodable file is a kino::Error naming it.
Image read_image(const std::string& path);

// PIL's Image.resize((width, height), Image.LANCZOS) on 8-bit RGB: separable
// Lanczos-3 (support widened by the scale when shrinking), horizontal pass
// first, 22-bit fixed-point weights, 8-bit rounding after each pass.
Image resize_lanczos(const Image& in, int64_t width, int64_t height);

}  // namespace kino
