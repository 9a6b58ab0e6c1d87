#include "request/window_spec.h"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "kino/error.h"

namespace kino {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

int64_t whole_number(const std::string& text, const std::string& what, const std::string& where) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || v < 0 || v > 4097) throw Error(concat(where, ": ", what, " must be a frame count from 0 to 4097, got '", text, "'"));
  return v;
}

const char* schedule_name(WindowSpec::Schedule s) {
  switch (s) {
    case WindowSpec::Schedule::Auto: return "auto";
    case WindowSpec::Schedule::None: return "none";
    case WindowSpec::Schedule::Static: return "static";
    case WindowSpec::Schedule::Uniform: return "uniform";
    case WindowSpec::Schedule::Looped: return "looped";
  }
  return "";
}

const char* fuse_name(WindowSpec::Fuse f) {
  switch (f) {
    case WindowSpec::Fuse::Pyramid: return "pyramid";
    case WindowSpec::Fuse::Flat: return "flat";
    case WindowSpec::Fuse::Linear: return "linear";
  }
  return "";
}

}  // namespace

WindowSpec parse_window_spec(const std::string& text, const std::string& where) {
  WindowSpec spec;
  if (text.empty() || text == "auto") return spec;
  if (text == "none") {
    spec.schedule = WindowSpec::Schedule::None;
    return spec;
  }
  const std::vector<std::string> parts = split(text, ',');
  const std::vector<std::string> head = split(parts[0], ':');
  if (head.empty() || head.size() > 2) throw Error(concat(where, ": '", text, "' is not SCHEDULE[:LENGTH][,OPTION...]"));
  bool known = false;
  for (auto s : {WindowSpec::Schedule::Static, WindowSpec::Schedule::Uniform, WindowSpec::Schedule::Looped})
    if (head[0] == schedule_name(s)) {
      spec.schedule = s;
      known = true;
    }
  if (!known) throw Error(concat(where, ": unknown context-window schedule '", head[0], "' (auto, none, static, uniform, looped)"));
  if (head.size() == 2) spec.length = whole_number(head[1], "the window length", where);
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p.rfind("overlap=", 0) == 0) {
      spec.overlap = whole_number(p.substr(8), "overlap", where);
    } else if (p.rfind("fuse=", 0) == 0) {
      const std::string f = p.substr(5);
      bool found = false;
      for (auto k : {WindowSpec::Fuse::Pyramid, WindowSpec::Fuse::Flat, WindowSpec::Fuse::Linear})
        if (f == fuse_name(k)) {
          spec.fuse = k;
          found = true;
        }
      if (!found) throw Error(concat(where, ": unknown fuse '", f, "' (pyramid, flat, linear)"));
    } else if (p == "freenoise") {
      spec.freenoise = true;
    } else {
      throw Error(concat(where, ": unknown context-window option '", p, "' (overlap=N, fuse=..., freenoise)"));
    }
  }
  return spec;
}

std::string window_spec_text(const WindowSpec& spec) {
  if (spec.schedule == WindowSpec::Schedule::Auto) return "";
  if (spec.schedule == WindowSpec::Schedule::None) return "none";
  std::string s = concat(schedule_name(spec.schedule), ":", spec.length, ",overlap=", spec.overlap, ",fuse=", fuse_name(spec.fuse));
  if (spec.freenoise) s += ",freenoise";
  return s;
}

WindowSpec resolve_window_spec(const WindowSpec& in, int64_t frames, int64_t trained_frames, int64_t fm) {
  WindowSpec spec = in;
  if (spec.schedule == WindowSpec::Schedule::None) return spec;
  if (spec.length == 0) spec.length = trained_frames;
  if (spec.length < 1 || (spec.length - 1) % fm)
    throw Error(concat("--context-windows: a window of ", spec.length, " frames is not ", fm, "k+1"));
  if (spec.schedule == WindowSpec::Schedule::Auto) {
    if (frames <= spec.length) {
      spec.schedule = WindowSpec::Schedule::None;
      return spec;
    }
    spec.schedule = WindowSpec::Schedule::Static;
  }
  const int64_t latent = (spec.length - 1) / fm + 1;
  if (spec.overlap < 0) {
    const auto o = static_cast<int64_t>(std::llround(static_cast<double>(latent) * 3.0 / 8.0));
    spec.overlap = o > 0 ? (o - 1) * fm + 1 : 0;
  }
  const int64_t overlap_latent = spec.overlap > 0 ? (spec.overlap - 1) / fm + 1 : 0;
  if (overlap_latent >= latent)
    throw Error(concat("--context-windows: an overlap of ", spec.overlap, " frames leaves nothing new in a window of ", spec.length));
  return spec;
}

}  // namespace kino
