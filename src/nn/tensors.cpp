#include "nn/tensors.h"

#include <ATen/CPUGeneratorImpl.h>

#include "kino/error.h"

namespace kino {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float32" || s == "fp32") return at::kFloat;
  if (s == "bfloat16" || s == "bf16") return at::kBFloat16;
  if (s == "float16" || s == "fp16") return at::kHalf;
  throw Error(concat("unknown dtype '", s, "' (expected float32, bfloat16 or float16)"));
}

at::Device parse_device(const std::string& s) {
  if (s == "auto") return at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  try {
    at::Device d(s);
    if (d.is_cuda() && !at::hasCUDA()) throw Error(concat("device '", s, "' requested, but this build or machine has no CUDA"));
    return d;
  } catch (const c10::Error&) {
    throw Error(concat("unknown device '", s, "' (expected auto, cpu or cuda[:N])"));
  }
}

at::Tensor seeded_noise(uint64_t seed, at::IntArrayRef shape) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor video_to_uint8(const at::Tensor& video) {
  at::Tensor x = ((video.to(at::kCPU, at::kFloat) + 1) / 2).clamp(0, 1);
  return (x * 255).round().to(at::kByte).permute({1, 2, 3, 0}).contiguous();
}

at::Tensor image_to_tensor(const Image& image) {
  const at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, at::kByte);
  return u8.permute({2, 0, 1}).unsqueeze(1).to(at::kFloat).div(255).sub(0.5).div(0.5);
}

}  // namespace kino
