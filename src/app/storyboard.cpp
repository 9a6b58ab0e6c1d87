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

// A continuous storyboard as one generation: the first shot's settings,
// every shot's latent frames end to end, each shot's prompt from its first
// latent frame (prompt travel over the context windows).
GenerationSettings continuous_settings(Pipeline& pipeline, const Storyboard& board, const std::vector<GenerationSettings>& shots,
                                       const std::string& name, const std::map<std::string, Preset>& presets,
                                       const StoryboardOptions& o) {
  const int64_t fm = pipeline.description().frame_multiple;
  int64_t latent = 0;
  std::vector<int64_t> starts;
  for (const GenerationSettings& s : shots) {
    starts.push_back(latent);
    latent += (s.frames - 1) / fm + 1;
  }
  GenerationRequest r = layered_request(board.shots[0].request, board.shots[0].preset, o.command_line, o.preset, presets, 0);
  r.frames = (latent - 1) * fm + 1;
  r.seconds.reset();
  GenerationSettings s = pipeline.resolve(r, o.run.strict);
  if (s.context_windows == "none")
    throw Error(concat(name, ": a continuous storyboard of ", s.frames, " frames fits one window of this model (trained on ",
                       pipeline.description().trained_frames, "): give longer shots, or --context-windows with a shorter length"));
  for (size_t i = 1; i < shots.size(); ++i)
    if (shots[i].steps != s.steps || shots[i].cfg != s.cfg || shots[i].sampler != s.sampler || shots[i].shift != s.shift)
      spdlog::warn("{} shot {}: a continuous storyboard samples with the first shot's steps, cfg, shift and sampler", name, i + 1);
  for (const GenerationSettings& shot : shots) s.travel_prompts.push_back(shot.prompt);
  s.travel_starts = starts;
  return s;
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
  if (board.continuous) {
    const GenerationSettings s = continuous_settings(pipeline, board, shots, name, presets, o);
    spdlog::info("continuous: {} shots, {} frames in context windows {}", shots.size(), s.frames, s.context_windows);
    StageTimes times;
    joined = generate_with_progress(pipeline, s, o.run.progress, times);
  }
  for (size_t i = 0; i < shots.size() && !board.continuous; ++i) {
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
  auto tags = provenance_tags(summary, model, o.run.label);
  nlohmann::json record = nlohmann::json::array();
  for (const auto& s : shots) record.push_back(settings_json(s, model));
  tags["kino_storyboard"] = nlohmann::json({{"crossfade", board.crossfade}, {"continuous", board.continuous}, {"shots", record}}).dump();
  const auto files = write_video(output, joined, tags, o.run.write);
  spdlog::info("wrote {} ({} shots, {} frames)", output, shots.size(), joined.frames);
  return {{"path", output}, {"files", files}, {"shots", shots.size()}, {"frames", joined.frames}, {"model", model.name}};
}

}  // namespace kino
