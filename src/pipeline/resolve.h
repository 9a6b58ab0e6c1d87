// Request resolution: a request against a model's defaults and description,
// every setting filled, range-checked (settings table), and rounded to what
// the model takes, with a warning, or refused when `strict`. It needs no
// weights, so that a bad request is refused before a model loads; it reads
// the size of a request's image. No torch here.
#pragma once
#include "kino/model.h"
#include "kino/request.h"

namespace kino {

GenerationSettings resolve_request(const GenerationRequest& request, const GenerationDefaults& defaults,
                                   const ModelDescription& model, bool strict);

}  // namespace kino
