// Prompt following measured from pixels: render prompts of the synthetic
// world with fixed seeds, measure background, colour, shape and motion, and
// count agreement per attribute, for English, German and held-out combinations.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kino/pipeline.h"
#include "world/world.h"

namespace kino {

struct EvalCase {
  world::Scene scene;
  world::Language language = world::Language::English;
  bool held_out = false;
  std::string prompt;
  uint64_t seed = 0;
};

// `per_group` random training-combination prompts per language, and as many
// held-out prompts (half English, half German), all from `seed`.
std::vector<EvalCase> make_eval_cases(int per_group, uint64_t seed);

struct EvalReport {
  struct Group {
    int n = 0, background = 0, color = 0, shape = 0, motion = 0;
  };
  Group english, german, held_out;
  nlohmann::json cases = nlohmann::json::array();  // per prompt: expected vs measured

  nlohmann::json to_json() const;
  std::string table() const;  // Markdown
};

EvalReport evaluate(Pipeline& pipeline, const std::vector<EvalCase>& cases, const GenerationRequest& base = {});

}  // namespace kino
