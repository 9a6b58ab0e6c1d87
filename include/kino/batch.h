// Batches: one video per item of a prompt file, the model loaded once.
// Items take their settings by layered_request (runner.h); a failing item is
// reported and the rest goes on. Torch-free.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/pipeline.h"
#include "kino/presets.h"
#include "kino/prompt_file.h"
#include "kino/runner.h"

namespace kino {

struct BatchOptions {
  std::string output_dir = ".";
  std::string name = "{index}-{slug}.mp4";  // expand_name's template, unless an item names its output
  bool skip_existing = false;               // items whose output exists are skipped (resuming)
  int64_t shard = 0, shards = 1;            // render the items with index % shards == shard
  GenerationRequest command_line;           // the command line's settings (see layered_request)
  std::string preset;                       // the command line's preset
  RunOptions run;
};

// "i/n" with 1 <= i <= n -> shard i - 1 of n; kino::Error otherwise.
void parse_shard(const std::string& text, int64_t& shard, int64_t& shards);

struct BatchSummary {
  int done = 0, skipped = 0, failed = 0;
  bool interrupted = false;  // the pipeline was cancelled: the rest was not rendered
  size_t items = 0;
  double seconds = 0;
  nlohmann::json failures = nlohmann::json::array();  // {index, line, error} each
  nlohmann::json to_json() const;
};

// Renders the items of this shard. `on_record` gets every finished item's
// record (render_one's, with "index") and every failure ({index, line, error}).
BatchSummary run_batch(Pipeline& pipeline, const std::vector<BatchItem>& items, const std::map<std::string, Preset>& presets,
                       const BatchOptions& options, const std::function<void(const nlohmann::json&)>& on_record = {});

}  // namespace kino
