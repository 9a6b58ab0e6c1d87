// What a user asks for (a request), the model's defaults, and what a request
// resolves to (the settings a video is made with and records). No torch here.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kino {

// What the user asked for; unset fields take the model's defaults.
struct GenerationRequest {
  std::string prompt;
  std::optional<std::string> negative;  // empty or unset: the model's default negative prompt
  std::optional<uint64_t> seed;         // unset: a random seed (reported back)
  std::optional<int64_t> steps, width, height, frames;
  std::optional<double> cfg, shift, fps;
  std::optional<double> cfg_low_noise;  // two-expert models; unset: the model's, or cfg when cfg is given
  std::optional<std::string> sampler;
  std::optional<std::string> cache;    // step caching: "teacache[:THRESH][,ret_steps]", "magcache...", "easycache...", "none"
  std::optional<std::string> context_windows;  // "auto", "none", "static[:LENGTH][,overlap=N][,fuse=F][,freenoise]", ...
  std::optional<double> seconds;       // duration; frames = seconds * fps, rounded to a valid count
  std::optional<std::string> aspect;   // "16:9", "9:16", "1:1", ...: the model's nearest size
  std::optional<std::string> image;    // a first frame to animate (models that take "image"); the size follows it
  std::optional<std::string> last_image;  // the last frame (first-last-frame models, "last_image")
  // VACE models: a source or control video, its mask (white: generate,
  // black: keep), subject images; the hints' scale. Any model: --strength
  // with a video denoises it (video-to-video). A PNG sequence's frame rate.
  std::optional<std::string> video, mask;
  std::optional<std::vector<std::string>> references;
  std::optional<double> context_scale, strength, video_fps;
  std::optional<int64_t> keep_frames;  // VACE extension: the video's last N frames kept, the rest of --frames generated
};

// A model's generation defaults (its manifest's "defaults").
struct GenerationDefaults {
  std::string sampler = "unipc";
  std::string cache;  // "" (none) or a step-caching spec
  int64_t steps = 50;
  double cfg = 5.0;
  std::optional<double> cfg_low_noise;  // two-expert models: the low-noise expert's scale (unset: cfg)
  double shift = 5.0;
  int64_t width = 832, height = 480, frames = 81;
  double fps = 16;
  std::string negative_prompt;
};

// A request resolved against the model's defaults and validated.
struct GenerationSettings {
  std::string prompt, negative, sampler;
  std::string cache;       // the step caching, canonical ("" = none; request/cache_spec.h)
  std::string context_windows;  // the context windows, canonical ("none" or every field; request/window_spec.h)
  std::string image;       // the first frame's file, "" for text-to-video
  std::string last_image;  // the last frame's file (first-last-frame models), ""
  std::string video, mask;              // a source video and its mask, "" for none
  std::vector<std::string> references;  // VACE subject images
  double context_scale = 1.0;           // VACE hints' scale
  double strength = 1.0;                // video-to-video: how much of the video is noised (1: all of it)
  double video_fps = 16;                // the frame rate a PNG sequence is read at
  int64_t keep_frames = 0;              // VACE extension: frames of the video kept (0: none, the video is a source)
  // A continuous storyboard (prompt travel): each shot's prompt and the
  // latent frame it starts at; a context window takes the prompt of the
  // shot holding its middle frame. Empty otherwise.
  std::vector<std::string> travel_prompts;
  std::vector<int64_t> travel_starts;
  uint64_t seed = 0;
  int64_t steps = 0, width = 0, height = 0, frames = 0;
  double cfg = 0, shift = 0, fps = 0;
  double cfg_low_noise = 0;  // the low-noise expert's scale; equal to cfg for one-transformer models
  std::vector<std::string> warnings;  // values rounded to what the model takes
};

// Fills every field `r` leaves unset from `from` (the prompt when empty).
void fill_unset(GenerationRequest& r, const GenerationRequest& from);

// "WIDTHxHEIGHT" -> (width, height); false if it does not look like that.
bool parse_size(const std::string& text, int64_t& width, int64_t& height);

}  // namespace kino
