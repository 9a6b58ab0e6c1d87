// A decoded video in memory. No torch here.
#pragma once
#include <cstdint>
#include <vector>

namespace kino {

struct Video {
  int64_t frames = 0, width = 0, height = 0;
  double fps = 0;
  std::vector<uint8_t> rgb;  // frames * height * width * 3, RGB24
};

}  // namespace kino
