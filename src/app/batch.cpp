#include "kino/batch.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "kino/error.h"

namespace fs = std::filesystem;

namespace kino {

void parse_shard(const std::string& text, int64_t& shard, int64_t& shards) {
  char slash = 0, rest = 0;
  long long i = 0, n = 0;
  if (std::sscanf(text.c_str(), "%lld%c%lld%c", &i, &slash, &n, &rest) != 3 || slash != '/' || n < 1 || i < 1 || i > n)
    throw Error(concat("--shard must be i/n with 1 <= i <= n, got '", text, "'"));
  shard = i - 1;
  shards = n;
}

nlohmann::json BatchSummary::to_json() const {
  return {{"summary", {{"done", done}, {"skipped", skipped}, {"failed", failed}, {"interrupted", interrupted},
                       {"items", items}, {"seconds", seconds}, {"failures", failures}}}};
}

BatchSummary run_batch(Pipeline& pipeline, const std::vector<BatchItem>& items, const std::map<std::string, Preset>& presets,
                       const BatchOptions& o, const std::function<void(const nlohmann::json&)>& on_record) {
  const auto t0 = std::chrono::steady_clock::now();
  BatchSummary sum;
  sum.items = items.size();
  auto emit = [&](const nlohmann::json& j) {
    if (on_record) on_record(j);
  };
  auto settings_of = [&](const BatchItem& item) {
    const GenerationRequest req =
        layered_request(item.request, item.preset, o.command_line, o.preset, presets, static_cast<uint64_t>(item.index));
    return pipeline.resolve(req, o.run.strict);
  };
  auto path_of = [&](const BatchItem& item, const GenerationSettings& s) {
    const std::string name = expand_name(item.output_name.empty() ? o.name : item.output_name, item.index, s.seed, item.request.prompt);
    return (fs::path(o.output_dir) / name).lexically_normal().string();
  };
  // Before anything renders: two items of this shard that would write one
  // file are refused (the second would overwrite the first). Items that do
  // not resolve fail at their turn.
  std::map<std::string, const BatchItem*> owners;
  for (const BatchItem& item : items) {
    if (item.index % o.shards != o.shard || !item.error.empty()) continue;
    std::string path;
    try {
      path = path_of(item, settings_of(item));
    } catch (const Error&) {
      continue;
    }
    const auto [it, fresh] = owners.emplace(path, &item);
    if (!fresh)
      throw Error(concat("items ", it->second->index, " (line ", it->second->line, ") and ", item.index, " (line ", item.line,
                         ") would both write ", path, ": give {index} or {seed} in --name, or distinct \"output\" names"));
  }
  for (const BatchItem& item : items) {
    if (item.index % o.shards != o.shard) continue;
    if (pipeline.cancelled()) {
      sum.interrupted = true;
      break;
    }
    auto fail = [&](const std::string& why) {
      ++sum.failed;
      spdlog::error("item {} (line {}): {}", item.index, item.line, why);
      const nlohmann::json failure = {{"index", item.index}, {"line", item.line}, {"error", why}};
      sum.failures.push_back(failure);
      emit(failure);
    };
    if (!item.error.empty()) {
      fail(item.error);
      continue;
    }
    try {
      const GenerationSettings s = settings_of(item);
      for (const auto& w : s.warnings) spdlog::warn("{}", w);
      const std::string path = path_of(item, s);
      std::error_code ec;
      if (o.skip_existing && fs::exists(path, ec)) {
        ++sum.skipped;
        spdlog::info("item {}: {} exists, skipped", item.index, path);
        continue;
      }
      spdlog::info("item {}/{}: {}", item.index + 1, items.size(), s.prompt);
      nlohmann::json record = render_one(pipeline, s, path, o.run);
      record["index"] = item.index;
      ++sum.done;
      emit(record);
    } catch (const Interrupted&) {
      sum.interrupted = true;
      break;
    } catch (const Error& e) {
      fail(e.what());
    }
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace kino
