#include "kino/version.h"

namespace kino {

const char* version() { return KINO_VERSION; }

}  // namespace kino
