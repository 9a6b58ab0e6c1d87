// umT5 encoder parity with wan.modules.t5.T5Encoder on the tiny fixture.
#include <gtest/gtest.h>

#include "kino/error.h"
#include "text/umt5.h"
#include "fixture_models.h"
#include "support.h"

using namespace kino;

TEST(UMT5, RelativeBucketsMatchTheTable) {
  KINO_REQUIRE_FIXTURES();
  at::Tensor table = test::load_tensors(test::fixture("t5_io.safetensors"))["rel_bucket_table"];
  for (int64_t rel = -511; rel <= 511; ++rel)
    ASSERT_EQ(t5_relative_bucket(rel, 32, 128), table[rel + 511].item<int64_t>()) << "rel " << rel;
}

TEST(UMT5, ForwardMatchesReferenceWithIntermediates) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("t5_io.safetensors"));
  UMT5Encoder enc = test::fixture_umt5();
  Trace trace;
  c10::InferenceMode inference;
  at::Tensor out = enc.forward(io["ids"], io["mask"], &trace);
  const std::string file = "t5_io.safetensors";
  for (const char* name : {"emb", "block0_attn_out", "block0_ffn_out", "block0_out", "block1_out", "block2_out",
                           "pos_bias0", "pos_bias1", "pos_bias2"})
    EXPECT_PARITY(trace.at(name), io[name], file, name);
  // Padded rows of row 1 are garbage in the reference too: compare the valid ones.
  EXPECT_PARITY(out[0], io["out"][0], file, "out");
  const int64_t n1 = io["seq_lens"][1].item<int64_t>();
  EXPECT_PARITY(out[1].slice(0, 0, n1), io["out"][1].slice(0, 0, n1), file, "out");
}

TEST(UMT5, LongSequenceUsesEveryBucket) {
  KINO_REQUIRE_FIXTURES();
  auto io = test::load_tensors(test::fixture("t5_io.safetensors"));
  UMT5Encoder enc = test::fixture_umt5();
  c10::InferenceMode inference;
  EXPECT_PARITY(enc.forward(io["ids_long"], io["mask_long"]), io["out_long"], "t5_io.safetensors", "out_long");
}
