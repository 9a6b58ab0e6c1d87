// Wan's release folders and defaults (wan/configs): the official Wan-AI
// folders (Wan2.1 T2V, I2V, FLF2V; Wan2.2 TI2V-5B, T2V-A14B, I2V-A14B) and
// Diffusers WanPipeline / WanImageToVideoPipeline folders, read as manifests
// with the official generation defaults. No torch here.
#pragma once
#include <vector>

#include "loading/release_folders.h"

namespace kino::wan {

// Wan's default negative prompt (wan/configs/shared_config.py).
extern const char* const kNegativePrompt;

// The official and the Diffusers folder, for the registry.
std::vector<FolderFormat> folder_formats();

}  // namespace kino::wan
