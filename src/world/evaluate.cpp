#include "world/evaluate.h"

#include <cstdio>

namespace kino {

std::vector<EvalCase> make_eval_cases(int per_group, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<EvalCase> out;
  auto add = [&](world::Language lang, bool held_out) {
    EvalCase c;
    c.scene = world::random_scene(rng, held_out);
    c.language = lang;
    c.held_out = held_out;
    c.prompt = world::caption(c.scene, lang, rng);
    c.seed = 1000 + out.size();
    out.push_back(c);
  };
  for (int i = 0; i < per_group; ++i) add(world::Language::English, false);
  for (int i = 0; i < per_group; ++i) add(world::Language::German, false);
  for (int i = 0; i < per_group; ++i) add(i % 2 ? world::Language::German : world::Language::English, true);
  return out;
}

EvalReport evaluate(Pipeline& pipeline, const std::vector<EvalCase>& cases, const GenerationRequest& base) {
  EvalReport report;
  for (const EvalCase& c : cases) {
    GenerationRequest req = base;
    req.prompt = c.prompt;
    req.seed = c.seed;
    const GenerationSettings s = pipeline.resolve(req);
    const Video v = pipeline.generate(s);
    const world::Measurement m = world::measure(v.rgb, static_cast<int>(v.width), static_cast<int>(v.height), static_cast<int>(v.frames));
    EvalReport::Group& g = c.held_out ? report.held_out : c.language == world::Language::English ? report.english : report.german;
    const bool bg = m.background == c.scene.background, col = m.color == c.scene.color;
    const bool sh = m.object_found && m.shape == c.scene.shape, mo = m.object_found && m.motion == c.scene.motion;
    ++g.n;
    g.background += bg;
    g.color += col;
    g.shape += sh;
    g.motion += mo;
    report.cases.push_back({{"prompt", c.prompt},
                            {"seed", c.seed},
                            {"held_out", c.held_out},
                            {"language", c.language == world::Language::English ? "en" : "de"},
                            {"expected",
                             {{"background", world::kBackgrounds[c.scene.background].name},
                              {"color", world::kObjectColors[c.scene.color].name},
                              {"shape", world::kShapeNames[int(c.scene.shape)]},
                              {"motion", world::kMotionNames[int(c.scene.motion)]}}},
                            {"measured",
                             {{"background", m.background >= 0 ? world::kBackgrounds[m.background].name : "?"},
                              {"color", m.color >= 0 ? world::kObjectColors[m.color].name : "?"},
                              {"shape", m.object_found ? world::kShapeNames[int(m.shape)] : "?"},
                              {"motion", m.object_found ? world::kMotionNames[int(m.motion)] : "?"},
                              {"fill_ratio", m.fill_ratio},
                              {"dx", m.dx},
                              {"dy", m.dy},
                              {"area_ratio", m.area_ratio}}},
                            {"correct", {{"background", bg}, {"color", col}, {"shape", sh}, {"motion", mo}}}});
  }
  return report;
}

namespace {
double pct(int k, int n) { return n ? 100.0 * k / n : 0.0; }
nlohmann::json group_json(const EvalReport::Group& g) {
  return {{"n", g.n},
          {"background", pct(g.background, g.n)},
          {"color", pct(g.color, g.n)},
          {"shape", pct(g.shape, g.n)},
          {"motion", pct(g.motion, g.n)}};
}
}  // namespace

nlohmann::json EvalReport::to_json() const {
  return {{"english", group_json(english)}, {"german", group_json(german)}, {"held_out", group_json(held_out)}, {"cases", cases}};
}

std::string EvalReport::table() const {
  std::string out = "| group | n | background | colour | shape | motion |\n|---|---|---|---|---|---|\n";
  auto row = [&](const char* name, const Group& g) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "| %s | %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", name, g.n, pct(g.background, g.n),
                  pct(g.color, g.n), pct(g.shape, g.n), pct(g.motion, g.n));
    out += buf;
  };
  row("English", english);
  row("German", german);
  row("held-out combinations", held_out);
  return out;
}

}  // namespace kino
