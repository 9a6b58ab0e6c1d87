#include "support.h"

#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loading/weights.h"

namespace fs = std::filesystem;

namespace kino::test {

Image image_of(const at::Tensor& u8) {
  const at::Tensor c = u8.contiguous();
  Image img;
  img.height = c.size(0);
  img.width = c.size(1);
  img.rgb.assign(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
  return img;
}

std::string fixture_dir(const std::string& name) {
  const char* env = std::getenv("KINO_FIXTURES");
  fs::path root = env ? fs::path(env) : fs::path(KINO_FIXTURES_DIR);
  std::error_code ec;
  return fs::is_directory(root / name, ec) ? (root / name).lexically_normal().string() : std::string();
}

std::string fixture(const std::string& file, const std::string& set) { return fixture_dir(set) + "/" + file; }

std::map<std::string, at::Tensor> load_tensors(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  TensorFile f = TensorFile::open(path);
  for (const auto& v : f.tensors()) out[v.name] = to_tensor(v);
  return out;
}

double tolerance(const std::string& file, const std::string& tensor, const std::string& set) {
  static std::map<std::string, nlohmann::json> manifests;
  auto it = manifests.find(set);
  if (it == manifests.end()) {
    std::ifstream in(fixture("MANIFEST.json", set));
    it = manifests.emplace(set, nlohmann::json::parse(in)).first;
  }
  const auto& files = it->second.at("files");
  const auto& t = files.at(file).at("tensors");
  if (!t.contains(tensor)) throw std::runtime_error("no tolerance for " + file + ":" + tensor);
  const auto& entry = t.at(tensor);
  if (entry.contains("rel_tol") && entry["rel_tol"].is_number()) return entry["rel_tol"].get<double>();
  // Floating tensors without their own limit (intermediates) take the
  // component's suggested tolerance; integer tensors must match exactly.
  if (entry.at("dtype").get<std::string>().rfind("float", 0) != 0) return 0.0;
  std::string component = files.at(file).at("component").get<std::string>();
  if (component == "e2e") component = "e2e_latent";
  const auto& suggested = it->second.at("tolerances").at("suggested");
  // wan22-tiny names its components dit22 / vae22; its table, dit / vae.
  if (!suggested.contains(component) && component.size() > 2 && component.compare(component.size() - 2, 2, "22") == 0)
    component.resize(component.size() - 2);
  return suggested.at(component).get<double>();
}

double rel_error(const at::Tensor& out, const at::Tensor& ref) {
  EXPECT_EQ(out.sizes(), ref.sizes());
  if (out.sizes() != ref.sizes()) return INFINITY;
  at::Tensor o = out.to(at::kCPU, at::kDouble), r = ref.to(at::kDouble);
  const double denom = r.norm().item<double>();
  const double num = (o - r).norm().item<double>();
  return denom == 0 ? num : num / denom;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "kino-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

// The recursive std::filesystem functions are walked with nftw here: the
// libtorch of PyTorch 2.x wheels exports broken copies of them
// (pytorch/pytorch#133437) that crash when bound.
TempDir::~TempDir() {
  chmod(path.c_str(), 0700);  // tests make it read-only
  nftw(
      path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) {
        ::remove(p);  // best effort: keep walking
        return 0;
      }, 16,
      FTW_DEPTH | FTW_PHYS);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandResult run_command(const std::string& command) {
  TempDir tmp;
  const std::string out = tmp / "out", err = tmp / "err";
  CommandResult r;
  const int status = std::system(("(" + command + ") >" + out + " 2>" + err + " </dev/null").c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

CommandResult kino_cli(const std::string& args) { return run_command(std::string(KINO_BINARY) + " " + args); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::vector<uint8_t> read_png_rgb(const std::string& path) {
  TempDir tmp;
  const std::string raw = tmp / "frame.rgb";
  const CommandResult r = run_command("ffmpeg -v error -i " + shell_quote(path) + " -f rawvideo -pix_fmt rgb24 " + shell_quote(raw));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(raw, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

const std::string& fixture_manifest_path() {
  static const std::string path = std::string(KINO_TEST_DATA_DIR) + "/wan21-tiny.kino.json";
  return path;
}

size_t count_files(const std::string& dir) {
  static thread_local size_t n;
  n = 0;
  nftw(
      dir.c_str(), [](const char*, const struct stat*, int type, struct FTW*) {
        if (type == FTW_F) ++n;
        return 0;
      }, 16,
      FTW_PHYS);
  return n;
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Tensors written to a safetensors file under new names.
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<at::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.contiguous());
    out.push_back({name, t.scalar_type() == at::kLong ? DType::I64 : DType::F32, t.sizes().vec(), keep.back().data_ptr()});
  }
  write_safetensors(path, out);
}

// A fixture DiT in Diffusers' WanTransformer3DModel names: the
// TRANSFORMER_KEYS_RENAME_DICT of Diffusers' convert_wan_to_diffusers.py
// (the image embedder and image keys of I2V/FLF2V, VACE's proj_in and
// proj_out included), written out
// literally and applied as that script does, in order, as substring
// replacements.
void write_diffusers_dit(const std::string& official_file, const std::string& path) {
  static const std::vector<std::pair<std::string, std::string>> kRenames = {
      {"time_embedding.0", "condition_embedder.time_embedder.linear_1"},
      {"time_embedding.2", "condition_embedder.time_embedder.linear_2"},
      {"text_embedding.0", "condition_embedder.text_embedder.linear_1"},
      {"text_embedding.2", "condition_embedder.text_embedder.linear_2"},
      {"time_projection.1", "condition_embedder.time_proj"},
      {"head.modulation", "scale_shift_table"},
      {"head.head", "proj_out"},
      {"modulation", "scale_shift_table"},
      {"ffn.0", "ffn.net.0.proj"},
      {"ffn.2", "ffn.net.2"},
      {"norm2", "norm__placeholder"},
      {"norm3", "norm2"},
      {"norm__placeholder", "norm3"},
      {"img_emb.proj.0", "condition_embedder.image_embedder.norm1"},
      {"img_emb.proj.1", "condition_embedder.image_embedder.ff.net.0.proj"},
      {"img_emb.proj.3", "condition_embedder.image_embedder.ff.net.2"},
      {"img_emb.proj.4", "condition_embedder.image_embedder.norm2"},
      {"img_emb.emb_pos", "condition_embedder.image_embedder.pos_embed"},
      {"self_attn.q", "attn1.to_q"},
      {"self_attn.k", "attn1.to_k"},
      {"self_attn.v", "attn1.to_v"},
      {"self_attn.o", "attn1.to_out.0"},
      {"self_attn.norm_q", "attn1.norm_q"},
      {"self_attn.norm_k", "attn1.norm_k"},
      {"cross_attn.q", "attn2.to_q"},
      {"cross_attn.k", "attn2.to_k"},
      {"cross_attn.v", "attn2.to_v"},
      {"cross_attn.o", "attn2.to_out.0"},
      {"cross_attn.norm_q", "attn2.norm_q"},
      {"cross_attn.norm_k", "attn2.norm_k"},
      {"attn2.to_k_img", "attn2.add_k_proj"},
      {"attn2.to_v_img", "attn2.add_v_proj"},
      {"attn2.norm_k_img", "attn2.norm_added_k"},
      {"before_proj", "proj_in"},
      {"after_proj", "proj_out"}};
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, t] : test::load_tensors(official_file)) {
    std::string n = name;
    for (const auto& [from, to] : kRenames)
      for (size_t at = n.find(from); at != std::string::npos; at = n.find(from, at + to.size())) n.replace(at, from.size(), to);
    out.emplace_back(n, t);
  }
  write_tensors(path, out);
}

std::string layouts_path(const std::string& rel) { return fixture_dir("wan21-layouts") + "/" + rel; }

void link(const std::string& target, const std::string& at) {
  fs::create_directories(fs::path(at).parent_path());
  fs::create_symlink(target, at);
}

void write_json(const std::string& at, const nlohmann::json& j) {
  fs::create_directories(fs::path(at).parent_path());
  std::ofstream(at) << j.dump();
}

FixtureIo::FixtureIo(const std::string& file, const std::string& set)
    : t(load_tensors(fixture(file, set))), meta(TensorFile::open(fixture(file, set)).metadata()) {}

}  // namespace kino::test
