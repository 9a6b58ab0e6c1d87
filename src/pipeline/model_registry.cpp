#include "pipeline/model_registry.h"

#include <algorithm>
#include <deque>
#include <mutex>

#include "kino/error.h"
#include "wan/registration.h"

namespace kino {

namespace {

std::deque<ModelEntry>& entries() {
  static std::deque<ModelEntry> all = [] {
    std::deque<ModelEntry> builtin;
    for (ModelEntry& e : wan::models()) builtin.push_back(std::move(e));
    return builtin;
  }();
  return all;
}

std::mutex& entries_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void register_model(ModelEntry entry) {
  std::lock_guard<std::mutex> lock(entries_mutex());
  for (const ModelEntry& e : entries())
    if (e.family == entry.family && e.task == entry.task)
      throw Error(concat("a model of family '", entry.family, "' and task '", entry.task, "' is registered already"));
  entries().push_back(std::move(entry));
}

const ModelEntry& find_model(const ModelManifest& m) {
  std::lock_guard<std::mutex> lock(entries_mutex());
  std::string known;
  for (const ModelEntry& e : entries()) {
    if (e.family == m.family && e.task == m.task) return e;
    known += concat(known.empty() ? "" : ", ", e.family, " ", e.task);
  }
  throw Error(concat(m.path, ": family '", m.family, "' with task '", m.task, "' is not supported (kino runs ", known, ")"));
}

ModelDescription describe_model(const ModelManifest& m) { return find_model(m).describe(m); }

bool ModelDescription::takes(const std::string& input) const {
  return std::find(inputs.begin(), inputs.end(), input) != inputs.end();
}

}  // namespace kino
