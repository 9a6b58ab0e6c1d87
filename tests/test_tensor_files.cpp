// Weight files: the safetensors reader/writer (round trips, sharded
// checkpoints) and the .pth reader (torch.save zips, read without Python),
// and refusal of every kind of malformed file with a message naming it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "kino/error.h"
#include "loading/tensor_file.h"
#include "loading/weights.h"
#include "support.h"

using namespace kino;

namespace {

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << header << data;
}

// Opens `path` and returns the error message (empty if it opened).
std::string open_error(const std::string& path) {
  try {
    TensorFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtype) {
  test::TempDir dir;
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-3f};
  std::vector<int64_t> i64 = {1, -2, 1LL << 40};
  std::vector<uint16_t> bf16 = {0x3F80, 0xC000};  // 1.0, -2.0
  std::vector<uint8_t> u8 = {0, 255, 7};
  write_safetensors(dir / "a.safetensors",
                    {{"w", DType::F32, {2, 3}, f32.data()},
                     {"ids", DType::I64, {3}, i64.data()},
                     {"half", DType::BF16, {2}, bf16.data()},
                     {"bytes", DType::U8, {3}, u8.data()},
                     {"empty", DType::F32, {0, 4}, nullptr}},
                    {{"component", "test"}});
  TensorFile f = TensorFile::open(dir / "a.safetensors");
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.metadata().at("component"), "test");
  const TensorView* w = f.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(w->data, f32.data(), f32.size() * 4), 0);
  EXPECT_EQ(std::memcmp(f.find("ids")->data, i64.data(), 24), 0);
  EXPECT_EQ(f.find("empty")->nbytes, 0u);
  at::Tensor bf = to_tensor(*f.find("half")).to(at::kFloat);
  EXPECT_FLOAT_EQ(bf[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(bf[1].item<float>(), -2.0f);
  // No temporary file is left behind.
  size_t entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1u);
}

TEST(Safetensors, ReadsShardedCheckpointsThroughTheIndex) {
  test::TempDir dir;
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  write_safetensors(dir / "m-00001.safetensors", {{"a", DType::F32, {2}, a.data()}});
  write_safetensors(dir / "m-00002.safetensors", {{"b", DType::F32, {3}, b.data()}});
  std::ofstream(dir / "m.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"a": "m-00001.safetensors", "b": "m-00002.safetensors"}})";
  Weights w(dir / "m.safetensors.index.json");
  EXPECT_EQ(w.take("b", {3})[2].item<float>(), 5.0f);
  EXPECT_EQ(w.take("a", {2})[0].item<float>(), 1.0f);
  EXPECT_NO_THROW(w.finish());
}

TEST(Safetensors, WeightsReportMissingUnexpectedAndMisshapenTensors) {
  test::TempDir dir;
  std::vector<float> a = {1, 2};
  write_safetensors(dir / "m.safetensors", {{"a", DType::F32, {2}, a.data()}, {"extra", DType::F32, {2}, a.data()}});
  {
    Weights w(dir / "m.safetensors");
    EXPECT_THROW(w.take("a", {3}), Error);
  }
  Weights w(dir / "m.safetensors");
  w.take("a", {2});
  EXPECT_FALSE(w.take("gone", {1}).defined());
  try {
    w.finish();
    FAIL() << "finish() accepted a missing tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensors: gone"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unexpected tensors: extra"), std::string::npos) << e.what();
  }
}

struct Malformed {
  const char* label;
  std::string header;
  std::string data;
  const char* expect;  // part of the message
};

void PrintTo(const Malformed& m, std::ostream* os) { *os << m.label; }

class SafetensorsRejects : public ::testing::TestWithParam<Malformed> {};

TEST_P(SafetensorsRejects, WithAMessageNamingTheProblem) {
  test::TempDir dir;
  const Malformed& m = GetParam();
  const std::string path = dir / "bad.safetensors";
  write_raw(path, m.header, m.data);
  const std::string err = open_error(path);
  ASSERT_FALSE(err.empty()) << m.label << " was accepted";
  EXPECT_NE(err.find(m.expect), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << "message does not name the file: " << err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsRejects,
    ::testing::Values(
        Malformed{"not_json", "{\"a\": ", "", "not valid JSON"},
        Malformed{"not_object", "[1, 2]", "", "not a JSON object"},
        Malformed{"unknown_dtype", R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "abcd", "unknown dtype 'F33'"},
        Malformed{"missing_shape", R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "abcd", "missing shape"},
        Malformed{"negative_dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd", "non-negative"},
        Malformed{"shape_past_end", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd", "more bytes than the file holds"},
        Malformed{"offsets_past_end", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "abcd", "outside the data section"},
        Malformed{"length_mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcdefgh", "byte length 4 != 8"},
        Malformed{"overlap", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                  "abcdefgh", "overlaps"},
        Malformed{"huge_shape", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "abcd",
                  "more bytes than the file holds"},
        Malformed{"bad_offsets", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "abcd", "outside the data section"},
        Malformed{"metadata_not_string", R"({"__metadata__":{"x":1}})", "", "is not a string"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(Safetensors, RejectsTruncatedFilesAndOversizedHeaders) {
  test::TempDir dir;
  std::ofstream(dir / "short.safetensors") << "abc";
  EXPECT_NE(open_error(dir / "short.safetensors").find("truncated"), std::string::npos);
  {
    std::ofstream out(dir / "long.safetensors", std::ios::binary);
    const uint64_t n = 1000;
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
    out << "{}";
  }
  EXPECT_NE(open_error(dir / "long.safetensors").find("exceeds the file size"), std::string::npos);
  EXPECT_NE(open_error(dir / "missing.safetensors").find("cannot open"), std::string::npos);
  // A real fixture cut in half no longer holds its tensors.
  KINO_REQUIRE_FIXTURES();
  std::ifstream in(test::fixture("t5_weights.safetensors"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir / "cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_NE(open_error(dir / "cut.safetensors").find("outside the data section"), std::string::npos);
}

TEST(Safetensors, WriteIntoMissingFolderFailsCleanly) {
  std::vector<float> a = {1};
  EXPECT_THROW(write_safetensors("/nonexistent-kino-dir/x.safetensors", {{"a", DType::F32, {1}, a.data()}}), Error);
}

namespace {

const std::string kTinyPth = std::string(KINO_SOURCE_DIR) + "/fuzz/corpus/pth/tiny.pth";

at::Tensor tensor_of(const TensorFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  if (!v) throw Error("missing " + name);
  return to_tensor(*v);
}

// tiny.pth with every occurrence of `from` replaced by `to` (same length).
std::string edited_tiny(const std::string& from, const std::string& to) {
  std::string bytes = test::read_file(kTinyPth);
  EXPECT_EQ(from.size(), to.size());
  size_t n = 0;
  for (size_t p = bytes.find(from); p != std::string::npos; p = bytes.find(from, p + to.size()), ++n) bytes.replace(p, from.size(), to);
  EXPECT_GT(n, 0u) << from;
  return bytes;
}

}  // namespace

TEST(Pth, ReadsATorchSaveZipWithSharedStoragesAndOffsets) {
  const TensorFile f = TensorFile::open(kTinyPth);  // made by fuzz/corpus/make_pth_seed.py
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_TRUE(at::equal(tensor_of(f, "block.weight"), at::arange(6, at::kFloat).view({2, 3})));
  EXPECT_TRUE(at::equal(tensor_of(f, "block.bias"), at::tensor({6.0f, 7.0f})));  // offset 6 into the same storage
  const at::Tensor scale = tensor_of(f, "norm.scale");
  EXPECT_EQ(scale.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(scale.to(at::kFloat), at::tensor({1.0f, -2.0f})));
}

TEST(Pth, OfficialWanCheckpointsHoldTheFixtureWeights) {
  KINO_REQUIRE_FIXTURES();
  const std::string official = test::fixture_dir("wan21-layouts") + "/official/";
  struct Pair {
    std::string pth, safetensors;
    bool bf16;
  };
  for (const Pair& p : {Pair{"Wan2.1_VAE.pth", "vae_weights.safetensors", false},
                        Pair{"models_t5_umt5-xxl-enc-f32.pth", "t5_weights.safetensors", false},
                        Pair{"models_t5_umt5-xxl-enc-bf16.pth", "t5_weights.safetensors", true}}) {
    const TensorFile pth = TensorFile::open(official + p.pth);
    const TensorFile ref = TensorFile::open(test::fixture(p.safetensors));
    ASSERT_EQ(pth.tensors().size(), ref.tensors().size()) << p.pth;
    for (const TensorView& r : ref.tensors()) {
      const at::Tensor expected = p.bf16 ? to_tensor(r).to(at::kBFloat16) : to_tensor(r);
      EXPECT_TRUE(at::equal(tensor_of(pth, r.name), expected)) << p.pth << ": " << r.name;
    }
  }
  // Weights (and so every model) load a .pth like a safetensors file.
  Weights w(official + "Wan2.1_VAE.pth");
  EXPECT_TRUE(w.has("encoder.conv1.weight"));
}

// A zip of stored entries, as torch.save writes them (no CRC: kino does not
// check it).
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  auto le = [](uint64_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
  };
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const uint64_t offset = out.size();
    out += "PK\x03\x04" + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) + le(data.size(), 4) +
           le(name.size(), 2) + le(0, 2) + name + data;
    central += "PK\x01\x02" + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) +
               le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  out += "PK\x05\x06" + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) + le(central.size(), 4) +
         le(cd_offset, 4) + le(0, 2);
  return out;
}

// A pickle of 3 MB of one-byte NONE opcodes would make 3 million values
// (~600 MB); it is refused at the bound instead, in bounded memory.
TEST(Pth, APickleOfMillionsOfValuesIsRefused) {
  test::TempDir dir;
  const std::string path = dir / "many.pth";
  std::ofstream(path, std::ios::binary) << stored_zip({{"many/data.pkl", "\x80\x02" + std::string(3000000, 'N') + "."}});
  const std::string err = open_error(path);
  EXPECT_NE(err.find("makes more than 2097152 values"), std::string::npos) << err;
}

struct BadPth {
  const char* label;
  std::string bytes;
  const char* expect;
};

void PrintTo(const BadPth& b, std::ostream* os) { *os << b.label; }

class PthRejects : public ::testing::TestWithParam<BadPth> {};

TEST_P(PthRejects, WithAMessageNamingTheProblem) {
  test::TempDir dir;
  const std::string path = dir / "bad.pth";
  std::ofstream(path, std::ios::binary) << GetParam().bytes;
  const std::string err = open_error(path);
  ASSERT_FALSE(err.empty()) << GetParam().label << " was accepted";
  EXPECT_NE(err.find(GetParam().expect), std::string::npos) << err;
  EXPECT_EQ(err.rfind(path, 0), 0u) << "message does not start with the file: " << err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PthRejects,
    ::testing::Values(
        BadPth{"truncated", test::read_file(kTinyPth).substr(0, 400), "no end of central directory"},
        BadPth{"code_execution", edited_tiny("collections\nOrderedDict\n", "subprocess\ncheck_output\n"),
               "refusing to call subprocess.check_output"},
        BadPth{"missing_storage", edited_tiny("tiny/data/1", "tiny/data/9"), "storage record tiny/data/1 is missing"},
        BadPth{"shape_past_storage", edited_tiny(std::string("K\x02K\x03\x86", 5), std::string("K\x02K\x09\x86", 5)),
               "shape larger than its storage"},
        BadPth{"compressed", edited_tiny(std::string("PK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00", 12),
                                         std::string("PK\x01\x02\x14\x03\x14\x00\x00\x00\x08\x00", 12)),
               "is compressed"},
        BadPth{"no_pickle", edited_tiny("tiny/data.pkl", "tiny/data.xyz"), "without data.pkl"}),
    [](const auto& info) { return std::string(info.param.label); });
