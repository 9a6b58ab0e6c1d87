#include "kino/storyboard.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "kino/error.h"
#include "kino/video_writer.h"

namespace kino {

namespace {

// The last `fade` frames of `joined` blend into the first `fade` of `next`
// (linearly), and the rest of `next` follows.
void append_crossfaded(Video& joined, const Video& next, int64_t fade) {
  const int64_t k = std::min({fade, joined.frames - 1, next.frames - 1});
  const size_t fb = static_cast<size_t>(next.width * next.height * 3);
  for (int64_t f = 0; f < k; ++f) {
    const double a = static_cast<double>(f + 1) / static_cast<double>(k + 1);
    uint8_t* dst = joined.rgb.data() + (joined.frames - k + f) * fb;
    const uint8_t* src = next.rgb.data() + f * fb;
    for (size_t p = 0; p < fb; ++p) dst[p] = static_cast<uint8_t>(std::lround((1 - a) * dst[p] + a * src[p]));
  }
  joined.rgb.insert(joined.rgb.end(), next.rgb.begin() + k * fb, next.rgb.end());
  joined.frames += next.frames - k;
}

}  // namespace

nlohmann::json render_storyboard(Pipeline& pipeline, const Storyboard& board, const std::string& name,
                                 const std::map<std::string, Preset>& presets, const std::string& output,
                                 const StoryboardOptions& o) {
  std::vector<GenerationSettings> shots;
  for (size_t i = 0; i < board.shots.size(); ++i) {
    const std::string where = concat(name, " shot ", i + 1);
    const StoryboardShot& shot = board.shots[i];
    GenerationSettings s;
    try {
      s = pipeline.resolve(layered_request(shot.request, shot.preset, o.command_line, o.preset, presets, i), o.run.strict);
    } catch (const Error& e) {
      throw Error(concat(where, ": ", e.what()));
    }
    for (const auto& w : s.warnings) spdlog::warn("{}: {}", where, w);
    if (!shots.empty() && (s.width != shots[0].width || s.height != shots[0].height || s.fps != shots[0].fps))
      throw Error(concat(where, ": every shot needs the same size and fps"));
    shots.push_back(std::move(s));
  }
  const int64_t fade = static_cast<int64_t>(std::llround(board.crossfade * shots[0].fps));
  Video joined;
  for (size_t i = 0; i < shots.size(); ++i) {
    spdlog::info("shot {}/{}: {} (seed {})", i + 1, shots.size(), shots[i].prompt, shots[i].seed);
    StageTimes times;
    Video v = generate_with_progress(pipeline, shots[i], o.run.progress, times);
    if (i == 0) joined = std::move(v);
    else append_crossfaded(joined, v, fade);
  }
  if (o.run.label) draw_label(joined);
  GenerationSettings summary = shots[0];
  summary.frames = joined.frames;
  summary.prompt.clear();
  for (const auto& s : shots) summary.prompt += (summary.prompt.empty() ? "" : " | ") + s.prompt;
  const ModelManifest& model = pipeline.model();
  auto tags = provenance_tags(summary, model);
  nlohmann::json record = nlohmann::json::array();
  for (const auto& s : shots) record.push_back(settings_json(s, model));
  tags["kino_storyboard"] = nlohmann::json({{"crossfade", board.crossfade}, {"shots", record}}).dump();
  const auto files = write_video(output, joined, tags, o.run.write);
  spdlog::info("wrote {} ({} shots, {} frames)", output, shots.size(), joined.frames);
  return {{"path", output}, {"files", files}, {"shots", shots.size()}, {"frames", joined.frames}, {"model", model.name}};
}

}  // namespace kino
