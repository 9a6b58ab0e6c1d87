// SHA-256 of a file (FIPS 180-4), streamed: what identifies an adapter file
// in a video's settings. No torch here.
#pragma once
#include <cstddef>
#include <string>

namespace kino {

// Lower-case hex digest of the file's bytes; kino::Error if it cannot be read.
std::string sha256_file(const std::string& path);
// The same of bytes in memory.
std::string sha256_bytes(const void* data, size_t size);

}  // namespace kino
