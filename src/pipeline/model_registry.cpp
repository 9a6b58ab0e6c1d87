#include "pipeline/model_registry.h"

#include <algorithm>

#include "kino/error.h"
#include "util/registry.h"
#include "wan/registration.h"

namespace kino {

namespace {

Registry<ModelEntry>& entries() {
  static Registry<ModelEntry> all(wan::models());
  return all;
}

}  // namespace

void register_model(ModelEntry entry) {
  if (entries().find([&](const ModelEntry& e) { return e.family == entry.family && e.task == entry.task; }))
    throw Error(concat("a model of family '", entry.family, "' and task '", entry.task, "' is registered already"));
  entries().add(std::move(entry));
}

const ModelEntry& find_model(const ModelManifest& m) {
  if (const ModelEntry* e = entries().find([&](const ModelEntry& e) { return e.family == m.family && e.task == m.task; }))
    return *e;
  std::string known;
  for (const ModelEntry& e : entries().all()) known += concat(known.empty() ? "" : ", ", e.family, " ", e.task);
  throw Error(concat(m.path, ": family '", m.family, "' with task '", m.task, "' is not supported (kino runs ", known, ")"));
}

ModelDescription describe_model(const ModelManifest& m) { return find_model(m).describe(m); }

bool ModelDescription::takes(const std::string& input) const {
  return std::find(inputs.begin(), inputs.end(), input) != inputs.end();
}

}  // namespace kino
