// Wan2.2 TI2V's image preprocessing (textimage2video.py): the output size
// follows the image's aspect ratio within the model's pixel count, then a
// LANCZOS scale (PIL-exact) and a centre crop. No torch here.
#pragma once
#include <cstdint>
#include <utility>

#include "media/image.h"

namespace kino {

// Wan2.2's best_output_size(w, h, dw, dh, expected_area): the size, in
// multiples of (dw, dh) and within expected_area pixels, whose aspect ratio
// is closest to w / h (width rounded first or height first, the better one).
std::pair<int64_t, int64_t> best_output_size(int64_t w, int64_t h, int64_t dw, int64_t dh, int64_t expected_area);

// TI2V's preprocessing: the output size from best_output_size(iw, ih,
// multiple, multiple, max_area), the image scaled to cover it (sizes
// rounded half to even, as Python's round) and cropped at the centre.
Image prepare_first_frame(const Image& in, int64_t multiple, int64_t max_area);

}  // namespace kino
