#include "world/world.h"

#include <algorithm>
#include <cmath>

namespace kino::world {

const std::array<NamedColor, 8> kObjectColors = {{{"red", {220, 40, 40}},
                                                  {"green", {40, 180, 60}},
                                                  {"blue", {50, 80, 220}},
                                                  {"yellow", {240, 220, 40}},
                                                  {"cyan", {40, 200, 220}},
                                                  {"purple", {150, 60, 200}},
                                                  {"orange", {250, 140, 30}},
                                                  {"white", {240, 240, 240}}}};
const std::array<NamedColor, 4> kBackgrounds = {
    {{"black", {15, 15, 15}}, {"white", {235, 235, 235}}, {"gray", {120, 120, 120}}, {"navy", {20, 30, 80}}}};
const std::array<const char*, 3> kShapeNames = {"circle", "square", "triangle"};
const std::array<const char*, 7> kMotionNames = {"left", "right", "up", "down", "grows", "shrinks", "still"};

namespace {

float distance(Rgb a, Rgb b) {
  const float dr = float(a.r) - b.r, dg = float(a.g) - b.g, db = float(a.b) - b.b;
  return std::sqrt(dr * dr + dg * dg + db * db);
}

template <size_t N>
int nearest(const std::array<NamedColor, N>& palette, Rgb c) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(N); ++i)
    if (distance(palette[i].rgb, c) < distance(palette[best].rgb, c)) best = i;
  return best;
}

// Where the object is at time u in [0, 1]: centre and half-extent (both
// relative to min(width, height) for the extent, to the frame for the centre).
struct Pose {
  float cx, cy, extent;
};

Pose pose_at(const Scene& s, float u) {
  constexpr float kTravel = 0.5f;  // a moving object crosses half the frame
  Pose p{s.x0, s.y0, s.large ? 0.19f : 0.11f};
  switch (s.motion) {
    case Motion::Left: p.cx -= kTravel * u; break;
    case Motion::Right: p.cx += kTravel * u; break;
    case Motion::Up: p.cy -= kTravel * u; break;
    case Motion::Down: p.cy += kTravel * u; break;
    case Motion::Grows: p.extent *= 0.6f + 0.8f * u; break;
    case Motion::Shrinks: p.extent *= 1.4f - 0.8f * u; break;
    case Motion::Still: break;
  }
  return p;
}

// Inside test in units of the half-extent, centred at the origin.
bool inside(Shape shape, float x, float y) {
  switch (shape) {
    case Shape::Circle: return x * x + y * y <= 1.0f;
    case Shape::Square: return std::fabs(x) <= 0.9f && std::fabs(y) <= 0.9f;
    case Shape::Triangle: {
      // Upright isosceles triangle: apex (0, -1.1), base y = 1.1, half-width 1.1.
      if (y < -1.1f || y > 1.1f) return false;
      const float half = 1.1f * (y + 1.1f) / 2.2f;
      return std::fabs(x) <= half;
    }
  }
  return false;
}

template <typename T>
const T& pick(const std::vector<T>& v, std::mt19937& rng) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

}  // namespace

bool is_valid(const Scene& s) { return distance(kObjectColors[s.color].rgb, kBackgrounds[s.background].rgb) >= 100; }

bool is_held_out(const Scene& s) {
  const int c = s.color;
  const Shape sh = s.shape;
  return (c == 0 && sh == Shape::Triangle) || (c == 2 && sh == Shape::Circle) || (c == 3 && sh == Shape::Square) ||
         (c == 5 && sh == Shape::Triangle) || (c == 4 && sh == Shape::Square);
}

Scene random_scene(std::mt19937& rng, bool held_out) {
  std::uniform_real_distribution<float> jitter(-0.06f, 0.06f);
  for (;;) {
    Scene s;
    s.color = std::uniform_int_distribution<int>(0, 7)(rng);
    s.background = std::uniform_int_distribution<int>(0, 3)(rng);
    s.shape = static_cast<Shape>(std::uniform_int_distribution<int>(0, 2)(rng));
    s.large = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    s.motion = static_cast<Motion>(std::uniform_int_distribution<int>(0, 6)(rng));
    s.x0 = 0.5f + jitter(rng);
    s.y0 = 0.5f + jitter(rng);
    if (s.motion == Motion::Right) s.x0 -= 0.25f;
    if (s.motion == Motion::Left) s.x0 += 0.25f;
    if (s.motion == Motion::Down) s.y0 -= 0.25f;
    if (s.motion == Motion::Up) s.y0 += 0.25f;
    if (is_valid(s) && is_held_out(s) == held_out) return s;
  }
}

std::vector<uint8_t> render(const Scene& s, int width, int height, int frames) {
  std::vector<uint8_t> out(static_cast<size_t>(frames) * height * width * 3);
  const Rgb bg = kBackgrounds[s.background].rgb, fg = kObjectColors[s.color].rgb;
  const float unit = static_cast<float>(std::min(width, height));
  for (int f = 0; f < frames; ++f) {
    const Pose p = pose_at(s, frames > 1 ? float(f) / float(frames - 1) : 0.0f);
    const float cx = p.cx * width, cy = p.cy * height, e = p.extent * unit;
    uint8_t* frame = out.data() + static_cast<size_t>(f) * height * width * 3;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        // 4x4 supersampling for coverage.
        int hits = 0;
        for (int sy = 0; sy < 4; ++sy)
          for (int sx = 0; sx < 4; ++sx)
            hits += inside(s.shape, (x + (sx + 0.5f) / 4 - cx) / e, (y + (sy + 0.5f) / 4 - cy) / e);
        const float a = hits / 16.0f;
        uint8_t* px = frame + (static_cast<size_t>(y) * width + x) * 3;
        px[0] = static_cast<uint8_t>(std::lround(bg.r + a * (fg.r - bg.r)));
        px[1] = static_cast<uint8_t>(std::lround(bg.g + a * (fg.g - bg.g)));
        px[2] = static_cast<uint8_t>(std::lround(bg.b + a * (fg.b - bg.b)));
      }
  }
  return out;
}

namespace {

// Word lists: the first entry is the canonical one.
const std::vector<std::vector<std::string>> kColorEn = {{"red"},    {"green"},          {"blue"},   {"yellow"},
                                                        {"cyan", "turquoise"}, {"purple", "violet"}, {"orange"}, {"white"}};
const std::vector<std::vector<std::string>> kShapeEn = {{"circle", "disc", "ball"}, {"square", "box"}, {"triangle"}};
const std::vector<std::vector<std::string>> kSizeEn = {{"small", "little", "tiny"}, {"large", "big", "huge"}};
const std::vector<std::vector<std::string>> kBgEn = {{"black", "dark"}, {"white"}, {"gray", "grey"}, {"navy", "dark blue"}};
// Motion as a participle phrase and as a finite verb phrase.
const std::vector<std::vector<std::string>> kMotionIngEn = {
    {"moving to the left", "moving left", "drifting to the left", "sliding left"},
    {"moving to the right", "moving right", "drifting to the right", "sliding right"},
    {"moving up", "moving upwards", "rising", "floating up"},
    {"moving down", "moving downwards", "falling", "sinking"},
    {"growing", "getting bigger", "expanding"},
    {"shrinking", "getting smaller", "contracting"},
    {"standing still", "not moving", "staying in place", "resting"}};
const std::vector<std::vector<std::string>> kMotionVerbEn = {
    {"moves to the left", "moves left", "drifts left", "slides to the left"},
    {"moves to the right", "moves right", "drifts right", "slides to the right"},
    {"moves up", "rises", "floats upwards"},
    {"moves down", "falls", "sinks"},
    {"grows", "gets bigger", "expands"},
    {"shrinks", "gets smaller", "contracts"},
    {"stays still", "does not move", "stays in place", "rests"}};

// German: adjective stems (declined below), noun genders: Kreis m, Quadrat n, Dreieck n.
const std::vector<std::vector<std::string>> kColorDe = {{"rot"},  {"grün"},           {"blau"},   {"gelb"},
                                                        {"türkis", "cyan"}, {"lila", "violett"}, {"orange"}, {"weiß"}};
const std::vector<std::vector<std::string>> kShapeDe = {{"Kreis", "Ball"}, {"Quadrat", "Viereck"}, {"Dreieck"}};
const std::vector<std::vector<std::string>> kSizeDe = {{"klein"}, {"groß"}};
const std::vector<std::vector<std::string>> kBgDe = {{"schwarz", "dunkel"}, {"weiß"}, {"grau"}, {"dunkelblau", "marineblau"}};
const std::vector<std::vector<std::string>> kMotionDe = {
    {"bewegt sich nach links", "gleitet nach links", "wandert nach links"},
    {"bewegt sich nach rechts", "gleitet nach rechts", "wandert nach rechts"},
    {"bewegt sich nach oben", "steigt auf", "schwebt nach oben"},
    {"bewegt sich nach unten", "fällt", "sinkt nach unten"},
    {"wird größer", "wächst", "dehnt sich aus"},
    {"wird kleiner", "schrumpft", "zieht sich zusammen"},
    {"bleibt stehen", "bewegt sich nicht", "ruht"}};

bool masculine_de(const std::string& noun) { return noun == "Kreis" || noun == "Ball"; }

// Adjective ending: `ending` is appended unless the colour word is one that
// stays undeclined in everyday German (lila, orange, türkis, cyan).
std::string decline_de(const std::string& stem, const std::string& ending) {
  if (stem == "lila" || stem == "orange" || stem == "türkis" || stem == "cyan") return stem;
  return stem + ending;
}

std::string caption_en(const Scene& s, std::mt19937* rng, Omit omit) {
  auto w = [&](const std::vector<std::string>& v) { return rng ? pick(v, *rng) : v.front(); };
  const std::string size = w(kSizeEn[s.large]), color = w(kColorEn[s.color]), shape = w(kShapeEn[int(s.shape)]);
  const std::string bg = w(kBgEn[s.background]), ing = w(kMotionIngEn[int(s.motion)]), verb = w(kMotionVerbEn[int(s.motion)]);
  // "large red circle", or without the colour / with a noun that names no shape.
  const std::string object = size + (omit == Omit::Color ? "" : " " + color) + " " + (omit == Omit::Shape ? "shape" : shape);
  const int t = rng ? std::uniform_int_distribution<int>(0, 5)(*rng) : 0;
  switch (t) {
    case 0: return "a " + object + " " + ing + " on a " + bg + " background";
    case 1: return "a " + object + " " + verb + " on a " + bg + " background";
    case 2: return "on a " + bg + " background, a " + object + " " + verb;
    case 3: return "a " + bg + " background with a " + object + " " + ing;
    case 4: return "the " + object + " " + verb + " against a " + bg + " background";
    default: return object + ", " + ing + ", " + bg + " background";
  }
}

std::string caption_de(const Scene& s, std::mt19937* rng, Omit omit) {
  auto w = [&](const std::vector<std::string>& v) { return rng ? pick(v, *rng) : v.front(); };
  const std::string noun = omit == Omit::Shape ? "Objekt" : w(kShapeDe[int(s.shape)]);  // Objekt: neuter
  const bool masc = masculine_de(noun);
  const std::string size_stem = w(kSizeDe[s.large]), color_stem = w(kColorDe[s.color]), bg_stem = w(kBgDe[s.background]);
  const std::string motion = w(kMotionDe[int(s.motion)]);
  // Size and colour adjectives declined with `ending`, then the noun.
  auto object = [&](const std::string& ending) {
    return decline_de(size_stem, ending) + " " + (omit == Omit::Color ? "" : decline_de(color_stem, ending) + " ") + noun;
  };
  // After "ein" (nominative): masculine -er, neuter -es; after "der/das": -e.
  const std::string a = "ein " + object(masc ? "er" : "es");
  const std::string on_bg = "auf " + bg_stem + "em Hintergrund";
  const int t = rng ? std::uniform_int_distribution<int>(0, 3)(*rng) : 0;
  switch (t) {
    case 0: return a + " " + motion + " " + on_bg;
    case 1: return a + " " + on_bg + " " + motion;
    case 2: return bg_stem + "er Hintergrund, " + a + " " + motion;
    default:
      return std::string(masc ? "der " : "das ") + object("e") + " " + motion + " vor " + bg_stem + "em Hintergrund";
  }
}

}  // namespace

std::string caption(const Scene& s, Language lang, std::mt19937& rng, Omit omit) {
  return lang == Language::English ? caption_en(s, &rng, omit) : caption_de(s, &rng, omit);
}

std::string canonical_caption(const Scene& s, Language lang) {
  return lang == Language::English ? caption_en(s, nullptr, Omit::Nothing) : caption_de(s, nullptr, Omit::Nothing);
}

Measurement measure(const std::vector<uint8_t>& rgb, int width, int height, int frames) {
  Measurement m;
  auto px = [&](int f, int y, int x) {
    const uint8_t* p = rgb.data() + ((static_cast<size_t>(f) * height + y) * width + x) * 3;
    return Rgb{p[0], p[1], p[2]};
  };
  // Background: the per-channel median of the border ring over all frames.
  std::array<std::vector<uint8_t>, 3> border;
  for (int f = 0; f < frames; ++f)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        if (y < 2 || y >= height - 2 || x < 2 || x >= width - 2) {
          const Rgb c = px(f, y, x);
          border[0].push_back(c.r);
          border[1].push_back(c.g);
          border[2].push_back(c.b);
        }
  auto median = [](std::vector<uint8_t>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const Rgb bg{median(border[0]), median(border[1]), median(border[2])};
  m.background = nearest(kBackgrounds, bg);

  // Object: pixels far from the background colour.
  std::array<std::vector<uint8_t>, 3> obj;
  std::vector<float> fills, areas, cxs, cys;
  for (int f = 0; f < frames; ++f) {
    int n = 0, x0 = width, x1 = -1, y0 = height, y1 = -1;
    double sx = 0, sy = 0;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const Rgb c = px(f, y, x);
        if (distance(c, bg) < 60) continue;
        ++n;
        sx += x;
        sy += y;
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
        obj[0].push_back(c.r);
        obj[1].push_back(c.g);
        obj[2].push_back(c.b);
      }
    areas.push_back(static_cast<float>(n));
    cxs.push_back(n ? static_cast<float>(sx / n) / width : 0.5f);
    cys.push_back(n ? static_cast<float>(sy / n) / height : 0.5f);
    if (n >= 9) fills.push_back(static_cast<float>(n) / static_cast<float>((x1 - x0 + 1) * (y1 - y0 + 1)));
  }
  if (obj[0].empty() || fills.empty()) return m;
  m.object_found = true;
  m.color = nearest(kObjectColors, Rgb{median(obj[0]), median(obj[1]), median(obj[2])});
  std::nth_element(fills.begin(), fills.begin() + fills.size() / 2, fills.end());
  m.fill_ratio = fills[fills.size() / 2];
  // Ideal ratios: circle pi/4 = 0.785, square 1, triangle 0.5.
  m.shape = m.fill_ratio < 0.64f ? Shape::Triangle : m.fill_ratio < 0.9f ? Shape::Circle : Shape::Square;

  // Motion: first two frames against the last two.
  const int k = std::min(2, frames);
  auto avg = [&](const std::vector<float>& v, bool last) {
    float s = 0;
    for (int i = 0; i < k; ++i) s += v[last ? v.size() - 1 - i : i];
    return s / k;
  };
  m.dx = avg(cxs, true) - avg(cxs, false);
  m.dy = avg(cys, true) - avg(cys, false);
  m.area_ratio = (avg(areas, true) + 1) / (avg(areas, false) + 1);
  if (std::max(std::fabs(m.dx), std::fabs(m.dy)) > 0.15f) {
    m.motion = std::fabs(m.dx) > std::fabs(m.dy) ? (m.dx > 0 ? Motion::Right : Motion::Left)
                                                 : (m.dy > 0 ? Motion::Down : Motion::Up);
  } else if (m.area_ratio > 1.5f) {
    m.motion = Motion::Grows;
  } else if (m.area_ratio < 1 / 1.5f) {
    m.motion = Motion::Shrinks;
  } else {
    m.motion = Motion::Still;
  }
  return m;
}

}  // namespace kino::world
