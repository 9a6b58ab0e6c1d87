// GGUF weights (../shared/fixtures/wan-gguf-tiny): the reader against the
// MANIFEST (every tensor's name, type and shape), every type decoded as
// gguf-py decodes it (sha256 of the float32 bytes), the tensor-op decoder
// (the GPU's) equal to the CPU loop, packed layers equal to decode-then-
// matmul, every bad file refused, the CLI end to end, and resident weight
// bytes that follow the file's quantised size.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "adapters/lora_merge.h"
#include "adapters/lora_plan.h"
#include "kino/manifest.h"
#include "loading/layouts.h"
#include "loading/weights.h"
#include "nn/nn.h"
#include "quant/blocks.h"
#include "quant/packed.h"
#include "support.h"
#include "util/sha256.h"
#include "wan/configs.h"
#include "wan/dit.h"

namespace {

using kino::DType;
using kino::TensorFile;
using kino::TensorView;

const std::string kSet = "wan-gguf-tiny";

const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream in(kino::test::fixture("MANIFEST.json", kSet));
    return nlohmann::json::parse(in);
  }();
  return m;
}

std::string gguf(const std::string& file) { return kino::test::fixture(file, kSet); }

// A view's values decoded on the CPU, float32 [numel].
std::vector<float> decoded(const TensorView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  kino::quant::decode(v.dtype, v.data, v.numel(), out.data());
  return out;
}

// The view's bytes as uint8 [rows, row bytes] (rows = all but the last dimension).
at::Tensor packed_bytes(const TensorView& v) {
  const int64_t cols = v.shape.back(), rows = v.numel() / cols;
  return at::from_blob(const_cast<uint8_t*>(v.data), {rows, kino::quant::row_bytes(v.dtype, cols)}, at::kByte).clone();
}

#define REQUIRE_GGUF_FIXTURES()                                                              \
  do {                                                                                       \
    if (kino::test::fixture_dir(kSet).empty()) GTEST_SKIP() << "wan-gguf-tiny fixtures not found"; \
  } while (0)

}  // namespace

// Every tensor of every GGUF file: name, ggml type and torch shape as the
// MANIFEST lists them, and the float32 decoding bit-equal to gguf-py's.
TEST(Gguf, EveryTensorReadsAndDecodesAsGgufPy) {
  REQUIRE_GGUF_FIXTURES();
  int checked = 0;
  for (const auto& [file, info] : manifest()["files"].items()) {
    if (!kino::ends_with(file, ".gguf")) continue;
    const TensorFile f = TensorFile::open(gguf(file));
    ASSERT_EQ(f.tensors().size(), info["n_tensors"].get<size_t>()) << file;
    EXPECT_EQ(f.metadata().at("general.architecture"), info["kv"]["general.architecture"].get<std::string>()) << file;
    for (const auto& t : info["tensors"]) {
      const std::string name = t["name"];
      const TensorView* v = f.find(name);
      ASSERT_NE(v, nullptr) << file << ": " << name;
      EXPECT_EQ(kino::dtype_name(v->dtype), t["type"].get<std::string>()) << file << ": " << name;
      EXPECT_EQ(v->shape, t["shape"].get<std::vector<int64_t>>()) << file << ": " << name;
      EXPECT_EQ(static_cast<int64_t>(v->nbytes), t["n_bytes"].get<int64_t>()) << file << ": " << name;
      const std::vector<float> values = decoded(*v);
      EXPECT_EQ(kino::sha256_bytes(values.data(), values.size() * 4), t["dequant_f32_sha256"].get<std::string>())
          << file << ": " << name << " (" << t["type"].get<std::string>() << ") decodes differently from gguf-py";
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

// The references stored as tensors (tiny256: the first 8 rows) at the
// MANIFEST's tolerance, through both decoders: kino's loop (CPU) and the
// tensor operations the GPU runs, which must agree bit for bit.
TEST(Gguf, DecodersMatchTheReferenceTensors) {
  REQUIRE_GGUF_FIXTURES();
  std::set<std::string> types;
  for (const auto& [ref_file, info] : manifest()["references"].items()) {
    const std::string gguf_file = ref_file.substr(0, ref_file.size() - std::string(".dequant.safetensors").size()) + ".gguf";
    if (!std::filesystem::exists(gguf(gguf_file))) continue;  // listed, not shipped (tiny256 Q5_K_M)
    const TensorFile f = TensorFile::open(gguf(gguf_file));
    const auto refs = kino::test::load_tensors(gguf(ref_file));
    for (const auto& [key, spec] : info["tensors"].items()) {
      const std::string name = key.substr(0, key.find(".rows"));  // tiny256: "<tensor>.rows0_8"
      const TensorView* v = f.find(name);
      ASSERT_NE(v, nullptr) << gguf_file << ": " << name;
      const at::Tensor bytes = packed_bytes(*v);
      const int64_t cols = v->shape.back();
      const at::Tensor cpu = kino::decode_on_cpu(v->dtype, bytes, cols);
      const at::Tensor ops = kino::decode_with_tensor_ops(v->dtype, bytes, cols);
      EXPECT_TRUE(at::equal(cpu, ops)) << gguf_file << ": " << name << " (" << kino::dtype_name(v->dtype) << ")";
      const at::Tensor ref = refs.at(key);
      const at::Tensor got = cpu.view(v->shape).narrow(0, 0, ref.size(0));
      EXPECT_LE(kino::test::rel_error(got, ref), spec["rel_tol"].get<double>()) << gguf_file << ": " << name;
      types.insert(kino::dtype_name(v->dtype));
    }
  }
  for (const char* t : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_TRUE(types.count(t)) << t << " was not checked";
}

// fp8 through the tensor-op decoder equals the CPU table, every code.
TEST(Gguf, Fp8TensorDecoderMatchesTheTable) {
  at::Tensor codes = at::arange(256, at::kInt).to(at::kByte).view({8, 32});
  for (DType type : {DType::F8_E4M3, DType::F8_E5M2}) {
    const at::Tensor cpu = kino::decode_on_cpu(type, codes, 32), ops = kino::decode_with_tensor_ops(type, codes, 32);
    EXPECT_TRUE(at::equal(at::isnan(cpu), at::isnan(ops)));
    EXPECT_TRUE(at::equal(at::nan_to_num(cpu), at::nan_to_num(ops))) << kino::dtype_name(type);
  }
}

// Every bad file is refused with an error naming it, without crashing or
// allocating by its bogus counts (the sanitizer build checks the reads).
TEST(Gguf, BadFilesAreRefused) {
  REQUIRE_GGUF_FIXTURES();
  EXPECT_NO_THROW(TensorFile::open(gguf("bad/good_minimal.gguf")));
  int refused = 0;
  for (const auto& [file, info] : manifest()["bad_files"].items()) {
    if (file == "good_minimal.gguf") continue;
    try {
      TensorFile::open(gguf("bad/" + file));
      ADD_FAILURE() << file << " (" << info["defect"].get<std::string>() << ") was accepted";
    } catch (const kino::Error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_EQ(refused, 13);
}

// A packed layer is decode-then-matmul, exactly; an embedding decodes the
// rows it looks up.
TEST(Gguf, PackedLayersEqualDecodeThenMatmul) {
  REQUIRE_GGUF_FIXTURES();
  const std::string file = gguf("wan2.1-t2v-tiny256-Q4_K_M.gguf");
  const TensorFile f = TensorFile::open(file);
  kino::Weights w(file);
  const at::Tensor x = at::randn({3, 5, 256});
  for (const char* name : {"blocks.0.self_attn.q", "blocks.0.self_attn.v"}) {  // Q4_K, Q6_K
    const kino::nn::Linear l(w, name, 256, 256);
    ASSERT_TRUE(l.packed.has_value()) << name;
    const TensorView* v = f.find(std::string(name) + ".weight");
    const at::Tensor weight = kino::decode_on_cpu(v->dtype, packed_bytes(*v), 256);
    EXPECT_TRUE(at::equal(l(x), at::linear(x, weight, l.bias))) << name;
    EXPECT_EQ(l.packed->stored_bytes(), static_cast<int64_t>(v->nbytes));
    const kino::nn::Embedding e(w, std::string(name) + ".weight", 256, 256);
    const at::Tensor ids = at::tensor(std::vector<int64_t>{7, 0, 255, 7}, at::kLong).view({2, 2});
    EXPECT_TRUE(at::equal(e(ids), at::embedding(weight, ids))) << name;
  }
}

// An adapter decodes only the layers it changes: those are patched in
// float32 and dense, every other quantised layer stays packed.
TEST(Gguf, AnAdapterDecodesOnlyTheLayersItChanges) {
  REQUIRE_GGUF_FIXTURES();
  const std::string file = gguf("wan2.1-t2v-tiny-Q8_0.gguf");
  const TensorFile f = TensorFile::open(file);
  kino::Weights w(file);
  w.set_patch([](const std::string&, at::Tensor& t) { t.add_(1); }, {"blocks.0.self_attn.q.weight"});
  const kino::nn::Linear q(w, "blocks.0.self_attn.q", 64, 64), k(w, "blocks.0.self_attn.k", 64, 64);
  ASSERT_FALSE(q.packed.has_value());
  ASSERT_TRUE(k.packed.has_value());
  const TensorView* v = f.find("blocks.0.self_attn.q.weight");
  EXPECT_TRUE(at::equal(q.weight, kino::decode_on_cpu(v->dtype, packed_bytes(*v), 64) + 1));
}

// A low-rank LoRA on a quantised model stays unmerged: its layers keep their
// blocks and add the low-rank product, which gives the merged model's
// output (decode, merge, matmul) to float32 rounding.
TEST(Gguf, LowRankLorasStayUnmergedOnQuantisedLayers) {
  REQUIRE_GGUF_FIXTURES();
  if (kino::test::fixture_dir("wan-lora-tiny").empty()) GTEST_SKIP() << "wan-lora-tiny fixtures not found";
  kino::ModelManifest m = kino::load_manifest(std::string(KINO_TEST_DATA_DIR) + "/wan21-gguf-q8_0.kino.json");
  kino::add_loras(m, {kino::LoraSpec{kino::test::fixture("loras/a_official_lora_down_up.safetensors", "wan-lora-tiny"), 0.8, ""}});
  const kino::WeightIndex& index = *m.weight_index.at("transformer");
  const kino::WanDiTConfig config = kino::dit_config(m);
  auto load = [&](bool unmerged) {
    kino::Weights w(index);
    w.set_patch(kino::lora_patch(m, "transformer"), kino::lora_targets(m, "transformer"),
                unmerged ? kino::lora_low_rank(m, "transformer") : kino::LowRankSource{});
    kino::WanDiT dit(config, w);
    w.finish();
    return dit;
  };
  const kino::WanDiT merged = load(false), unmerged = load(true);
  EXPECT_LT(unmerged.weight_bytes(), merged.weight_bytes());  // the patched matrices stayed Q8_0
  auto io = kino::test::load_tensors(kino::test::fixture("dit_io.safetensors"));
  c10::InferenceMode inference;
  auto run = [&](const kino::WanDiT& dit) {
    return dit.forward({io["a.x"]}, {io["a.t"][0].item<double>()}, {io["a.context"]}, io["a.seq_len"].item<int64_t>())[0];
  };
  const double rel = kino::test::rel_error(run(unmerged), run(merged));
  std::printf("[ parity ] unmerged LoRA on Q8_0 vs merged: rel %.2e\n", rel);
  EXPECT_LE(rel, 1e-5);

  kino::Weights w(index);
  w.set_patch(kino::lora_patch(m, "transformer"), kino::lora_targets(m, "transformer"), kino::lora_low_rank(m, "transformer"));
  const kino::nn::Linear q(w, "blocks.0.self_attn.q", 64, 64);
  ASSERT_TRUE(q.packed.has_value());
  EXPECT_FALSE(q.deltas.empty());
}

// The transformer's resident weights follow the file: packed matrices at
// their stored size, the rest (biases, norms, F16 embeddings) at float32.
TEST(Gguf, ResidentWeightBytesFollowTheFile) {
  REQUIRE_GGUF_FIXTURES();
  for (const char* file : {"wan2.1-t2v-tiny-Q4_0.gguf", "wan2.1-t2v-tiny256-Q2_K.gguf", "wan2.1-t2v-tiny256-Q4_K_M.gguf"}) {
    const std::string path = gguf(file);
    nlohmann::json config = {{"text_len", 32}, {"num_heads", std::string(file).find("tiny256") != std::string::npos ? 2 : 4}};
    const kino::WeightIndex index = kino::index_weights("wan2.1", "transformer", path, config);
    kino::Weights w(index);
    const kino::WanDiT dit(kino::WanDiTConfig::from_json(config, path), w);
    w.finish();
    int64_t quantised = 0, dense_elements = 0;
    const TensorFile f = TensorFile::open(path);
    for (const auto& v : f.tensors()) {
      if (kino::is_quantised(v.dtype)) quantised += static_cast<int64_t>(v.nbytes);
      else dense_elements += v.numel();
    }
    EXPECT_EQ(dit.weight_bytes(), quantised + 4 * dense_elements) << file;
    EXPECT_EQ(index.fixed_bytes, quantised) << file;  // what the memory check counts
  }
}

// The CLI runs the GGUF fixture models: frames within 1/255 of the official
// pipeline's on the dequantised weights.
TEST(Gguf, CliReproducesTheReferenceFrames) {
  REQUIRE_GGUF_FIXTURES();
  const auto io = kino::test::load_tensors(gguf("e2e_gguf_io.safetensors"));
  for (const std::string run : {"q8_0", "q4_k_m"}) {
    kino::test::TempDir dir;
    const std::string model = std::string(KINO_TEST_DATA_DIR) + "/wan21-gguf-" + run + ".kino.json";
    const auto r = kino::test::kino_cli("generate " + kino::test::shell_quote("a large red circle moving to the right on a black background") +
                                        " --model " + kino::test::shell_quote(model) + " --seed 42 -o " +
                                        kino::test::shell_quote(dir / "out_%04d.png"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const at::Tensor ref = ((io.at(run + ".video") + 1) / 2).clamp(0, 1).mul(255).permute({1, 2, 3, 0});  // [9, 48, 64, 3]
    ASSERT_EQ(kino::test::count_files(dir.path), 9u) << run;
    for (int64_t frame = 0; frame < 9; ++frame) {
      char name[32];
      std::snprintf(name, sizeof name, "out_%04d.png", static_cast<int>(frame));
      std::vector<uint8_t> px = kino::test::read_png_rgb(dir / name);
      ASSERT_EQ(px.size(), 48u * 64u * 3u) << run << " " << name;
      const at::Tensor got = at::from_blob(px.data(), {48, 64, 3}, at::kByte).to(at::kFloat);
      EXPECT_LE((got - ref[frame]).abs().max().item<double>(), 1.0) << run << " " << name << ": pixels differ by more than 1/255";
    }
  }
}

// `kino model` says how each component is stored.
TEST(Gguf, ModelListsTheStoredTypes) {
  REQUIRE_GGUF_FIXTURES();
  const auto r = kino::test::kino_cli("model " + kino::test::shell_quote(std::string(KINO_TEST_DATA_DIR) + "/wan21-gguf-q4_k_m.kino.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wan2.1-t2v-tiny256-Q4_K_M.gguf (official names), F32 x26, Q4_K x7, F16 x6, Q6_K x3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("umt5-xxl-encoder-tiny-Q8_0.gguf (llama.cpp names), Q8_0 x22"), std::string::npos) << r.out;
}
