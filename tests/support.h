// Shared helpers for the test suite: fixture lookup, tolerances from the
// fixture MANIFEST, relative errors, temporary folders, running the CLI.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loading/tensor_file.h"
#include "media/image.h"

namespace kino::test {

// ../shared/fixtures/<name>; empty if the fixtures are absent.
std::string fixture_dir(const std::string& name = "wan21-tiny");
std::string fixture(const std::string& file, const std::string& set = "wan21-tiny");

// Every tensor of a safetensors file, as owned tensors.
std::map<std::string, at::Tensor> load_tensors(const std::string& path);
// The MANIFEST.json rel_tol of one tensor of one file of a fixture set.
double tolerance(const std::string& file, const std::string& tensor, const std::string& set = "wan21-tiny");
// ||out - ref|| / ||ref|| in float64.
double rel_error(const at::Tensor& out, const at::Tensor& ref);

// An RGB24 image from a fixture's uint8 [H, W, 3] tensor.
Image image_of(const at::Tensor& u8);

// A fresh folder under the system temp dir, removed when the object dies.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line; captures stdout and stderr.
CommandResult run_command(const std::string& command);
std::string shell_quote(const std::string& s);
// Runs the kino binary with `args` (already shell-quoted where needed).
CommandResult kino_cli(const std::string& args);
// The bytes of a file ("" if it cannot be read).
std::string read_file(const std::string& path);
// A PNG decoded to RGB24 bytes by the ffmpeg tool.
std::vector<uint8_t> read_png_rgb(const std::string& path);
// ../shared/fixtures/wan21-layouts/<rel> (release files in every layout).
std::string layouts_path(const std::string& rel);
// A symbolic link at `at` to `target`, and JSON written to `at`, their
// folders made.
void link(const std::string& target, const std::string& at);
void write_json(const std::string& at, const nlohmann::json& j);
// Tensors written to a safetensors file under the given names.
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors);
// An official Wan DiT file written in Diffusers' names (the renames of
// convert_wan_to_diffusers.py, VACE's included).
void write_diffusers_dit(const std::string& official_file, const std::string& path);
// The fixture model's manifest (tests/fixtures/wan21-tiny.kino.json).
const std::string& fixture_manifest_path();
// Regular files under `dir`, recursively; lines in `s`.
size_t count_files(const std::string& dir);
size_t count_lines(const std::string& s);

}  // namespace kino::test

namespace kino::test {

// A fixture file of `set`: its tensors and metadata (a case's arguments, as
// JSON text, under the case's name).
struct FixtureIo {
  FixtureIo(const std::string& file, const std::string& set);
  std::map<std::string, at::Tensor> t;
  std::map<std::string, std::string> meta;
  const at::Tensor& operator[](const std::string& k) const { return t.at(k); }
  bool has(const std::string& k) const { return t.count(k) > 0; }
};

}  // namespace kino::test

// Parity against a tensor of fixture set `set` with its MANIFEST tolerance,
// printed with `tag`.
#define EXPECT_PARITY_IN(set, tag, out, ref, file, name)                                                    \
  do {                                                                                                      \
    const double kino_err_ = kino::test::rel_error(out, ref), kino_tol_ = kino::test::tolerance(file, name, set); \
    EXPECT_LE(kino_err_, kino_tol_) << name;                                                                \
    std::printf("[ parity ] %s %-36s rel %.3e (tol %.0e)\n", tag, std::string(name).c_str(), kino_err_, kino_tol_); \
  } while (0)

#define KINO_REQUIRE_FIXTURES()                                                     \
  do {                                                                              \
    if (kino::test::fixture_dir().empty())                                          \
      GTEST_SKIP() << "reference fixtures not found at " KINO_FIXTURES_DIR;         \
  } while (0)

// Parity check against a fixture tensor with its MANIFEST tolerance.
#define EXPECT_PARITY(out, ref, file, name)                                                     \
  do {                                                                                          \
    const double kino_err_ = kino::test::rel_error(out, ref);                                   \
    const double kino_tol_ = kino::test::tolerance(file, name);                                 \
    EXPECT_LE(kino_err_, kino_tol_) << name;                                                     \
    ::testing::Test::RecordProperty(std::string("rel_err_") + name, std::to_string(kino_err_));                  \
    std::printf("[ parity ] %-40s rel %.3e (tol %.0e)\n", std::string(name).c_str(), kino_err_, kino_tol_); \
  } while (0)
