// Model families register here, per (family, task): how to describe a model
// from its manifest (torch-free, nothing loaded) and how to make its
// generator. Pipeline looks the manifest's explicit family and task up and
// never asks more; adding a family or task is new files and one
// register_model call (built-ins: src/wan/registration.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kino/manifest.h"
#include "kino/model.h"
#include "pipeline/video_model.h"

namespace kino {

struct ModelEntry {
  std::string family, task;
  std::function<ModelDescription(const ModelManifest& m)> describe;
  std::function<std::unique_ptr<VideoModel>(const ModelManifest& m, const LoadOptions& options)> create;
};

void register_model(ModelEntry entry);
// The entry of `m`'s family and task; kino::Error naming the manifest and
// listing the registered ones otherwise.
const ModelEntry& find_model(const ModelManifest& m);

}  // namespace kino
