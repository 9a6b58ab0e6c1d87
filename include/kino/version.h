// kino's version, as `kino --version` prints it and videos record it.
#pragma once

namespace kino {

const char* version();

}  // namespace kino
