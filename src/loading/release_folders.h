// Release folders as downloaded (a family's official or Diffusers folder)
// read as manifests: each family registers the folders it recognises, and
// load_manifest asks them in turn for a folder without a kino.json.
// No torch here.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kino {

struct ReleaseFolder {
  nlohmann::json manifest;  // a kino.json's content
  std::string file;         // the file it stands for: names it in errors, anchors relative paths
};

struct FolderFormat {
  std::string name;  // e.g. "Wan-AI release"
  // The folder's manifest, or nothing when the folder is not of this format.
  std::function<std::optional<ReleaseFolder>(const std::string& dir)> read;
};

void register_folder_format(FolderFormat format);

}  // namespace kino
