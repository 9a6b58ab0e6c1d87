// kino-tiny's synthetic world (DESIGN.md section 5): one flat shape on a flat
// background, captions in English and German, and the measurement of those
// attributes back from pixels. No torch here.
#pragma once
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kino::world {

enum class Shape { Circle, Square, Triangle };
enum class Motion { Left, Right, Up, Down, Grows, Shrinks, Still };
enum class Language { English, German };

struct Rgb {
  uint8_t r, g, b;
};

struct NamedColor {
  const char* name;
  Rgb rgb;
};
extern const std::array<NamedColor, 8> kObjectColors;  // red ... white
extern const std::array<NamedColor, 4> kBackgrounds;   // black, white, gray, navy
extern const std::array<const char*, 3> kShapeNames;
extern const std::array<const char*, 7> kMotionNames;

struct Scene {
  int color = 0;       // index into kObjectColors
  int background = 0;  // index into kBackgrounds
  Shape shape = Shape::Circle;
  bool large = false;
  Motion motion = Motion::Still;
  // Start position of the centre in [0, 1] (x right, y down); jitter.
  float x0 = 0.5f, y0 = 0.5f;
};

// Every colour on every background except where they are within RGB
// distance 100 (white on white).
bool is_valid(const Scene& s);
// Combinations kept out of training to measure generalisation: these
// (colour, shape) pairs never appear in the training data.
bool is_held_out(const Scene& s);

// A random valid scene; `held_out` selects from the held-out combinations
// only (true) or from the training combinations only (false).
Scene random_scene(std::mt19937& rng, bool held_out);

// RGB24 frames [frames, height, width, 3]. Shapes are anti-aliased by 4x4
// supersampling of the edge pixels.
std::vector<uint8_t> render(const Scene& s, int width, int height, int frames);

// What a caption leaves unsaid: nothing (every caption kino is asked to
// follow), the object's colour ("a large circle ..."), or its shape ("a large
// red shape ...", German "Objekt"). Partial captions are a training device:
// they condition colour and shape apart from each other.
enum class Omit { Nothing, Color, Shape };

// A caption from one of several templates with synonyms.
std::string caption(const Scene& s, Language lang, std::mt19937& rng, Omit omit = Omit::Nothing);
// The canonical caption (first template, first synonyms).
std::string canonical_caption(const Scene& s, Language lang);

// Attributes measured from pixels.
struct Measurement {
  int background = -1, color = -1;
  Shape shape = Shape::Circle;
  Motion motion = Motion::Still;
  bool object_found = false;
  float fill_ratio = 0, dx = 0, dy = 0, area_ratio = 1;
};
Measurement measure(const std::vector<uint8_t>& rgb, int width, int height, int frames);

}  // namespace kino::world
