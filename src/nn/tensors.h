// Tensors to and from what kino reads and writes (seeds, images, frames),
// and the runtime's device and dtype names.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "media/image.h"

namespace kino {

// "auto" (cuda when this build and machine have it), "cpu", "cuda", "cuda:N";
// kino::Error for anything else, or cuda without CUDA.
at::Device parse_device(const std::string& s);
// float32/fp32, bfloat16/bf16, float16/fp16; kino::Error otherwise.
at::ScalarType parse_dtype(const std::string& s);

// torch.manual_seed(seed); torch.randn(shape) on the CPU, in float32.
at::Tensor seeded_noise(uint64_t seed, at::IntArrayRef shape);
// video [3, F, H, W] in [-1, 1] -> RGB24 [F, H, W, 3]: round(clamp((x+1)/2, 0, 1) * 255).
at::Tensor video_to_uint8(const at::Tensor& video);
// An RGB24 image -> [3, 1, H, W] in [-1, 1]: (x / 255 - 0.5) / 0.5, float32
// (textimage2video.py's image tensor).
at::Tensor image_to_tensor(const Image& image);

}  // namespace kino
