// The Wan families' models for the registry (src/pipeline/model_registry.h):
// wan2.1 t2v, wan2.2 t2v (one transformer, or A14B's two experts) and
// wan2.2 ti2v (text and image to video).
#pragma once
#include <vector>

#include "pipeline/model_registry.h"

namespace kino::wan {

std::vector<ModelEntry> models();

}  // namespace kino::wan
